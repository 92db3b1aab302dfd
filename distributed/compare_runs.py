#!/usr/bin/env python3
"""Compares the outputs of two panda runs within a tolerance.

    compare_runs.py features A.features B.features TOLERANCE
    compare_runs.py results A/results.json B/results.json TOLERANCE

`features` reads two feature cache files (core/feature_cache.cc: magic,
version, six length-prefixed key fields, int64 rows and columns, float32
data, checksum). `results` compares every number of two results.json files
except timings. Two values a and b agree when |a - b| <= TOLERANCE * (1 + |b|).
Exits 1 naming the first disagreement, 0 when everything agrees.
"""
import array
import json
import struct
import sys

# Fields that measure time or name the run, which differ between any runs.
IGNORED_FIELDS = {"seconds", "wall_seconds", "started_at", "images_per_second",
                  "pipeline"}


def read_features(path):
    with open(path, "rb") as stream:
        data = stream.read()
    if data[:8] != b"PANDAFEA":
        sys.exit(f"{path}: not a feature cache file")
    offset = 12
    for _ in range(6):
        (length,) = struct.unpack_from("<I", data, offset)
        offset += 4 + length
    rows, columns = struct.unpack_from("<qq", data, offset)
    offset += 16
    values = array.array("f")
    values.frombytes(data[offset:offset + 4 * rows * columns])
    return rows, columns, values


def compare_features(path_a, path_b, tolerance):
    rows_a, columns_a, a = read_features(path_a)
    rows_b, columns_b, b = read_features(path_b)
    if (rows_a, columns_a) != (rows_b, columns_b):
        sys.exit(f"shape [{rows_a}, {columns_a}] of {path_a} differs from "
                 f"[{rows_b}, {columns_b}] of {path_b}")
    worst = 0.0
    for i, (x, y) in enumerate(zip(a, b)):
        difference = abs(x - y)
        worst = max(worst, difference / (1 + abs(y)))
        if difference > tolerance * (1 + abs(y)):
            sys.exit(f"row {i // columns_a}, column {i % columns_a}: {x!r} in "
                     f"{path_a}, {y!r} in {path_b}")
    print(f"features agree: [{rows_a}, {columns_a}], largest relative "
          f"difference {worst:.3g}")


def compare_values(a, b, where, tolerance):
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (set(a) | set(b)) - IGNORED_FIELDS
        for key in sorted(keys):
            if key not in a or key not in b:
                sys.exit(f"{where}.{key} is in one file only")
            compare_values(a[key], b[key], f"{where}.{key}", tolerance)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            sys.exit(f"{where}: {len(a)} entries against {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            compare_values(x, y, f"{where}[{i}]", tolerance)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if abs(a - b) > tolerance * (1 + abs(b)):
            sys.exit(f"{where}: {a!r} against {b!r}")
    elif a != b:
        sys.exit(f"{where}: {a!r} against {b!r}")


def compare_results(path_a, path_b, tolerance):
    with open(path_a) as a, open(path_b) as b:
        compare_values(json.load(a), json.load(b), "results", tolerance)
    print(f"results agree within {tolerance}")


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("features", "results"):
        sys.exit(__doc__)
    compare = compare_features if sys.argv[1] == "features" else compare_results
    compare(sys.argv[2], sys.argv[3], float(sys.argv[4]))


if __name__ == "__main__":
    main()
