#!/usr/bin/env bash
# Measures feature extraction and exact kNN at 1, 2 and 4 ranks on this
# machine and prints a Markdown table (docs/distributed.md):
#
#   bazel build //apps:panda //distributed:sharded_knn_benchmark
#   tools/measure_distributed_scaling.sh CONFIG [PANDA RUN ARGUMENT ...]
#
# Extraction: `panda run CONFIG` with an empty cache folder, as 1, 2 and 4
# ranks through tools/launch_local.sh. The seconds are rank 0's extraction
# of both splits, the exchange of the shards included. kNN: sharded_knn_benchmark with a
# 20000 x 1280 bank (MobileNetV2's feature size) and 5000 queries, k = 2.
# Each rank runs max(1, cores / ranks) LibTorch threads, so the ranks never
# ask for more threads than there are cores, except past one rank per core.
set -euo pipefail
cd "$(dirname "$0")/.."

(($# >= 1)) || {
  echo "usage: $0 CONFIG [PANDA RUN ARGUMENT ...]" >&2
  exit 2
}
config=$1
shift

panda=bazel-bin/apps/panda
benchmark=bazel-bin/distributed/sharded_knn_benchmark
for binary in "$panda" "$benchmark"; do
  [[ -x $binary ]] || {
    echo "$0: $binary is missing; bazel build //apps:panda //distributed:sharded_knn_benchmark" >&2
    exit 1
  }
done
cores=$(nproc)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| ranks | threads per rank | extraction s | images/s | kNN s |"
echo "|---:|---:|---:|---:|---:|"
for ranks in 1 2 4; do
  threads=$((cores / ranks))
  ((threads >= 1)) || threads=1
  rm -rf "$work/cache" "$work/out"
  OMP_NUM_THREADS=$threads tools/launch_local.sh "$ranks" -- "$panda" run "$config" \
    --cache_dir="$work/cache" --output_dir="$work/out" --threads="$threads" "$@" \
    >"$work/run.log" 2>&1 || {
    tail -5 "$work/run.log" >&2
    exit 1
  }
  results=$(ls "$work"/out/*/results.json)
  read -r seconds images < <(python3 -c '
import json, sys
run = json.load(open(sys.argv[1]))
print(sum(e["seconds"] for e in run["extraction"]),
      sum(e["images"] for e in run["extraction"]))' "$results")
  knn=$(OMP_NUM_THREADS=$threads tools/launch_local.sh "$ranks" -- \
    "$benchmark" 20000 5000 1280 2 2>/dev/null |
    sed -n 's/.*k 2: \([0-9.]*\) s$/\1/p')
  printf "| %d | %d | %.1f | %.0f | %.2f |\n" "$ranks" "$threads" "$seconds" \
    "$(python3 -c "print($images / $seconds)")" "$knn"
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
