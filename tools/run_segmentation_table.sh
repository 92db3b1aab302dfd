#!/usr/bin/env bash
# Runs the segmentation comparison of docs/RESULTS.md on the synthetic
# defect set. For every texture in data/textures/ it runs PatchCore with the
# full memory bank and with coresets of 10% and 1%, and SPADE-style patch
# kNN. It then summarises memory, time and accuracy in Markdown tables.
#   tools/run_segmentation_table.sh [OUTPUT_DIR]   (default results/segmentation)
# About 10 minutes on 2 CPU cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-results/segmentation}"
cd "$root"

core=configs/segmentation/synthetic_burlap_mobilenet_v2_patch_core.pbtxt
knn=configs/segmentation/synthetic_burlap_mobilenet_v2_patch_knn.pbtxt
results=()
for texture in data/textures/*.png; do
  name=$(basename "$texture" .png)
  texture_set="dataset.synthetic_defects.texture=\"$texture\""
  for fraction in 1 0.1 0.01; do
    run="${name}_patch_core_${fraction}"
    echo "== $run" >&2
    ./panda run "$core" --output_dir="$out" --set "name=$run" --set "$texture_set" \
      --set "segmentation.segmenter.patch_core.coreset_fraction=$fraction" --set segmentation.pictures=0 >&2
    results+=("$out/$run/results.json")
  done
  run="${name}_patch_knn"
  echo "== $run" >&2
  ./panda run "$knn" --output_dir="$out" --set "name=$run" --set "$texture_set" \
    --set segmentation.pictures=0 >&2
  results+=("$out/$run/results.json")
done
python3 tools/summarize_segmentation.py "${results[@]}" | tee "$out/segmentation.md"
