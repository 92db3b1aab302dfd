#!/usr/bin/env bash
# Runs the adaptation comparison of docs/RESULTS.md: the subset configs in
# configs/adaptation/ one after another, then `panda compare` over their
# results and `panda plot-training` over their feature variance curves.
#   tools/run_adaptation_table.sh [OUTPUT_DIR]   (default results/adaptation)
# About 50 minutes on 2 CPU cores. Runs already finished are resumed from
# their checkpoints and cached features, so an interrupted call can be
# repeated.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-results/adaptation}"
cd "$root"

runs=(
  fashion_mnist_mobilenet_v2_dn2
  fashion_mnist_mobilenet_v2_early_stopping
  fashion_mnist_mobilenet_v2_sample_wise
  fashion_mnist_mobilenet_v2_ewc
  fashion_mnist_mobilenet_v2_outlier_exposure
  fashion_mnist_lenet_deep_svdd
)
results=()
for run in "${runs[@]}"; do
  echo "== $run" >&2
  ./panda run "configs/adaptation/$run.pbtxt" --output_dir="$out"
  results+=("$out/$run/results.json")
done
./panda compare "${results[@]}" --output="$out/comparison.md"
./panda plot-training "${results[@]:1}" --output="$out/feature_variance.png"
