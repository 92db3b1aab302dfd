#!/usr/bin/python3
"""Turns the RESULT lines of compare_throughput.sh into a Markdown table.

  summarize_throughput.py RESULTS_FILE

Per model: the median images/s of each variant over the repetitions, the
ratio of the C++ end-to-end throughput to default Python (DataLoader without
workers, contiguous memory format, glibc's default malloc) and to the
fastest Python variant, and
the share of the machine's measured convolution throughput (the
channels-last 3x3 convolution of backbone_throughput --mode=conv, measured
right before each forward-only run) that the C++ forward pass reaches, from
the model's FLOPs at 224 px.
"""

import collections
import statistics
import sys

VARIANTS = [
    ("cpp", "end_to_end pipeline=overlap", "C++, decoding overlapped with the forward pass"),
    ("cpp", "end_to_end pipeline=serial", "C++, decoding then forward pass"),
    ("cpp", "forward", "C++, forward pass only"),
    ("python", "end_to_end workers=0 malloc_tuned=0 channels_last=0",
     "Python, DataLoader without workers"),
    ("python", "end_to_end workers=1 malloc_tuned=0 channels_last=0",
     "Python, DataLoader with 1 worker"),
    ("python", "end_to_end workers=1 malloc_tuned=1 channels_last=1",
     "Python, 1 worker, channels-last and the C++ side's malloc settings"),
]
DEFAULT_PYTHON = VARIANTS[3][1]


def parse(path):
    results = []
    for line in open(path):
        if not line.startswith("RESULT "):
            continue
        results.append(dict(field.split("=", 1) for field in line.split()[1:]))
    return results


def variant_key(result):
    if result["side"] == "cpp":
        if result["mode"] == "forward":
            return "forward"
        return f"end_to_end pipeline={result['pipeline']}"
    return (f"end_to_end workers={result['workers']} malloc_tuned={result['malloc_tuned']} "
            f"channels_last={result['channels_last']}")


def main():
    results = parse(sys.argv[1])
    flops = {r["model"]: int(r["flops_per_image"]) for r in results if r["mode"] == "flops"}
    speeds = collections.defaultdict(list)
    # Per model: (forward images/s, convolution GFLOP/s measured just before).
    forward_and_conv = collections.defaultdict(list)
    conv = []
    last_conv = None
    for r in results:
        if r["mode"] == "conv" and r["channels_last"] == "1":
            last_conv = float(r["gflops_per_s"])
            conv.append(last_conv)
        if r["mode"] in ("end_to_end", "forward"):
            speeds[(r["model"], r["side"], variant_key(r))].append(float(r["images_per_s"]))
        if r["mode"] == "forward" and last_conv:
            forward_and_conv[r["model"]].append((float(r["images_per_s"]), last_conv))

    if conv:
        print(f"Convolution reference (3x3, 256 -> 256 channels, 56 x 56, batch 32, "
              f"channels-last): median {statistics.median(conv):.1f} GFLOP/s, "
              f"range {min(conv):.1f} to {max(conv):.1f} over {len(conv)} runs\n")
    print("| model | variant | images/s (median) | runs |")
    print("|---|---|---|---|")
    for model in ["resnet50", "resnet152", "mobilenet_v2"]:
        for side, key, label in VARIANTS:
            values = speeds.get((model, side, key))
            if values:
                print(f"| {model} | {label} | {statistics.median(values):.2f} | {len(values)} |")
    print()
    print("Ratios are medians of the ratios within each repetition.\n")
    print("| model | C++ / default Python | C++ / fastest Python | C++ forward GFLOP/s | "
          "share of conv GFLOP/s | FLOPs per image |")
    print("|---|---|---|---|---|---|")
    for model in ["resnet50", "resnet152", "mobilenet_v2"]:
        cpp = speeds.get((model, "cpp", "end_to_end pipeline=overlap"))
        python = [statistics.median(v) for (m, side, _), v in speeds.items()
                  if m == model and side == "python"]
        forward = speeds.get((model, "cpp", "forward"))
        default = speeds.get((model, "python", DEFAULT_PYTHON))
        if not cpp or not python or not default:
            continue
        # The i-th runs of every variant ran back to back in repetition i,
        # so the ratio within a repetition is less exposed to changes in
        # machine load than the ratio of medians.
        ratio_default = statistics.median(c / p for c, p in zip(cpp, default))
        fastest = max((v for (m, side, _), v in speeds.items() if m == model and side == "python"),
                      key=statistics.median)
        ratio_best = statistics.median(c / p for c, p in zip(cpp, fastest))
        gflops = share = "n/a"
        if forward and model in flops:
            rate = statistics.median(forward) * flops[model] / 1e9
            gflops = f"{rate:.1f}"
            pairs = forward_and_conv.get(model)
            if pairs:
                shares = [speed * flops[model] / 1e9 / reference for speed, reference in pairs]
                share = f"{100 * statistics.median(shares):.0f}%"
        per_image = f"{flops[model] / 1e9:.2f} G" if model in flops else "n/a"
        print(f"| {model} | {ratio_default:.2f}x | {ratio_best:.2f}x | {gflops} | {share} | "
              f"{per_image} |")


if __name__ == "__main__":
    main()
