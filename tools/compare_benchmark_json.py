#!/usr/bin/env python3
"""Compare two Google Benchmark JSON files benchmark by benchmark.

    tools/compare_benchmark_json.py BEFORE.json AFTER.json [--threshold 0.1]

Both files come from a benchmark binary run with --benchmark_format=json
(or --benchmark_out=FILE --benchmark_out_format=json). For every benchmark
name in both files, the ratio AFTER / BEFORE of its time is printed. A
ratio above 1 + threshold is flagged SLOWER, one below 1 / (1 + threshold)
FASTER. With --benchmark_repetitions, the median aggregate is compared;
without aggregates, the median of the runs of a name. Benchmarks that
failed (error_occurred) or exist in one file only are listed apart.

Exit status: 0 when nothing is SLOWER, 1 when something is, 2 for bad
input. Python 3 standard library only.
"""

import argparse
import json
import statistics
import sys

# Google Benchmark's time units, in nanoseconds.
UNIT_NANOSECONDS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


class InputError(Exception):
    """A file that is not a Google Benchmark JSON report."""


def load_times(path, field):
    """Returns ({name: nanoseconds}, [names that failed]) from one report."""
    try:
        with open(path, encoding="utf-8") as file:
            report = json.load(file)
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: invalid JSON: {error}") from error
    if not isinstance(report, dict) or not isinstance(
        report.get("benchmarks"), list
    ):
        raise InputError(
            f"{path}: no \"benchmarks\" list; expected the output of "
            "--benchmark_format=json"
        )

    medians = {}
    runs = {}
    failed = []
    for index, run in enumerate(report["benchmarks"]):
        name = run.get("run_name", run.get("name"))
        if name is None:
            raise InputError(f"{path}: benchmarks[{index}] has no name")
        if run.get("error_occurred"):
            failed.append(name)
            continue
        if field not in run:
            raise InputError(
                f"{path}: benchmark {name} has no field \"{field}\""
            )
        unit = run.get("time_unit", "ns")
        if unit not in UNIT_NANOSECONDS:
            raise InputError(
                f"{path}: benchmark {name} has unknown time_unit \"{unit}\""
            )
        nanoseconds = float(run[field]) * UNIT_NANOSECONDS[unit]
        if run.get("run_type") == "aggregate":
            if run.get("aggregate_name") == "median":
                medians[name] = nanoseconds
        else:
            runs.setdefault(name, []).append(nanoseconds)

    times = {name: statistics.median(values) for name, values in runs.items()}
    times.update(medians)
    return times, failed


def format_time(nanoseconds):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if nanoseconds >= scale:
            return f"{nanoseconds / scale:.3f} {unit}"
    return f"{nanoseconds:.1f} ns"


def compare(before, after, threshold):
    """Returns (table lines, number of SLOWER benchmarks)."""
    names = [name for name in before if name in after]
    width = max([len("benchmark")] + [len(name) for name in names])
    lines = [
        f"{'benchmark':<{width}}  {'before':>12}  {'after':>12}  "
        f"{'ratio':>7}  flag"
    ]
    slower = 0
    for name in names:
        if before[name] <= 0:
            ratio = float("inf") if after[name] > 0 else 1.0
        else:
            ratio = after[name] / before[name]
        flag = ""
        if ratio > 1 + threshold:
            flag = "SLOWER"
            slower += 1
        elif ratio < 1 / (1 + threshold):
            flag = "FASTER"
        lines.append(
            f"{name:<{width}}  {format_time(before[name]):>12}  "
            f"{format_time(after[name]):>12}  {ratio:>7.3f}  {flag}".rstrip()
        )
    return lines, slower


def main(argv):
    parser = argparse.ArgumentParser(
        description="Compare two Google Benchmark JSON files by time ratio."
    )
    parser.add_argument("before", help="JSON report of the reference run")
    parser.add_argument("after", help="JSON report of the run to check")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.1,
        help="relative change that is flagged (default 0.1: 10%% slower, "
        "or faster by the inverse factor)",
    )
    parser.add_argument(
        "--field",
        choices=("real_time", "cpu_time"),
        default="real_time",
        help="which time to compare (default real_time)",
    )
    arguments = parser.parse_args(argv)
    if not arguments.threshold > 0:
        parser.error(f"--threshold must be positive, got {arguments.threshold}")

    try:
        before, before_failed = load_times(arguments.before, arguments.field)
        after, after_failed = load_times(arguments.after, arguments.field)
    except InputError as error:
        print(f"compare_benchmark_json: error: {error}", file=sys.stderr)
        return 2

    lines, slower = compare(before, after, arguments.threshold)
    print("\n".join(lines))
    failed = set(before_failed) | set(after_failed)
    only_before = [n for n in before if n not in after and n not in failed]
    only_after = [n for n in after if n not in before and n not in failed]
    for label, names in (
        ("failed in " + arguments.before, before_failed),
        ("failed in " + arguments.after, after_failed),
        ("only in " + arguments.before, only_before),
        ("only in " + arguments.after, only_after),
    ):
        if names:
            print(f"{label}: {', '.join(names)}")
    if slower:
        print(
            f"{slower} of {len(lines) - 1} benchmarks are more than "
            f"{arguments.threshold:.0%} slower"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
