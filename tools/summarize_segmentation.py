#!/usr/bin/env python3
"""Summarises segmentation runs into Markdown tables.

Usage: summarize_segmentation.py RESULTS.json [...]

Each run's name must be <texture>_<variant>, as tools/run_segmentation_table.sh
names them. Prints the mean over textures of each variant (memory bank,
fit and scoring time, image ROC-AUC, pixel ROC-AUC, AUPRO), then pixel
ROC-AUC / AUPRO per texture and variant. Standard library only.
"""
import collections
import json
import sys


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        sys.exit(f"summarize_segmentation: cannot read {path}: {error}")
    classes = run.get("classes", [])
    if not classes or "segmentation" not in classes[0]:
        sys.exit(f"summarize_segmentation: {path} is not a segmentation run")
    return run


def split_name(name):
    for marker in ("_patch_core", "_patch_knn"):
        if marker in name:
            at = name.index(marker)
            return name[:at], name[at + 1:]
    sys.exit(f"summarize_segmentation: run name {name!r} names no variant")


def main(paths):
    if not paths:
        sys.exit(__doc__)
    by_variant = collections.defaultdict(dict)
    for path in paths:
        run = load(path)
        texture, variant = split_name(run["pipeline"])
        row = run["classes"][0]
        seg = row["segmentation"]
        by_variant[variant][texture] = {
            "image": row["roc_auc"],
            "pixel": seg["pixel_roc_auc"],
            "aupro": seg["aupro"],
            "patches": seg["memory_bank_patches"],
            "mib": seg["memory_bank_mib"],
            "fit": seg["fit_seconds"],
            "score": seg["score_seconds"],
        }

    def mean(variant, key):
        values = [r[key] for r in by_variant[variant].values()]
        return sum(values) / len(values)

    print("| variant | memory bank (patches) | MiB | fit s | scoring s |"
          " image ROC-AUC | pixel ROC-AUC | AUPRO |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for variant in by_variant:
        print(f"| {variant} | {mean(variant, 'patches'):.0f} | {mean(variant, 'mib'):.2f} |"
              f" {mean(variant, 'fit'):.1f} | {mean(variant, 'score'):.1f} |"
              f" {100 * mean(variant, 'image'):.2f} | {100 * mean(variant, 'pixel'):.2f} |"
              f" {100 * mean(variant, 'aupro'):.2f} |")
    print()
    variants = list(by_variant)
    textures = sorted({t for v in variants for t in by_variant[v]})
    print("| texture | " + " | ".join(variants) + " |")
    print("|---|" + "---:|" * len(variants))
    for texture in textures:
        cells = []
        for variant in variants:
            r = by_variant[variant].get(texture)
            cells.append(f"{100 * r['pixel']:.2f} / {100 * r['aupro']:.2f}" if r else "")
        print(f"| {texture} | " + " | ".join(cells) + " |")
    print()
    print("Means over textures; per texture: pixel ROC-AUC / AUPRO, in percent.")


if __name__ == "__main__":
    main(sys.argv[1:])
