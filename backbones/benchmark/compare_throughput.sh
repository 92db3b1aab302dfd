#!/usr/bin/env bash
# Measures feature-extraction throughput of this project's C++ backbones and
# of the same models in Python PyTorch, side by side on this machine, and
# prints the table of docs/BENCHMARKS_BACKBONES.md:
#
#   backbones/benchmark/compare_throughput.sh [WORK_DIR]
#
# Each repetition runs every variant of a model once, one after another, so
# that changes in machine load spread over all of them, and measures the
# convolution reference right before the forward-only run. REPEATS (default
# 5) sets the repetitions; the table reports medians. Both sides use 2 LibTorch
# threads and batches of 32 Fashion-MNIST test images decoded from PNG files.
# Needs ./setup.sh (python3-torch, python3-torchvision, data/weights/).
set -euo pipefail
cd "$(dirname "$0")/../.."

WORK=${1:-/tmp/panda_backbone_throughput}
REPEATS=${REPEATS:-5}
THREADS=2
BATCH=32
PYTHON=/usr/bin/python3
PEER=backbones/benchmark/backbone_throughput.py
CPP=bazel-bin/backbones/benchmark/backbone_throughput
# The glibc malloc settings that core/malloc_tuning.h applies, for the tuned
# Python variant.
MALLOC_TUNING=(MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736
               MALLOC_TOP_PAD_=1073741824)

bazel build //backbones/benchmark:backbone_throughput
mkdir -p "$WORK"
[[ -f $WORK/png/01199.png ]] || $PYTHON $PEER prepare --images "$WORK/png" --count 1200
for model in resnet50 resnet152; do
  [[ -f $WORK/$model.pth ]] ||
    $PYTHON $PEER checkpoint --model "$model" --weights "$WORK/$model.pth"
done

RESULTS=$WORK/results.txt
: >"$RESULTS"
record() { "$@" 2>/dev/null | grep '^RESULT' | tee -a "$RESULTS"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RESULTS"
for model in resnet50 resnet152 mobilenet_v2; do
  case $model in
    resnet50) count=96 cpp_weights=$WORK/resnet50.pth py_weights=$WORK/resnet50.pth ;;
    resnet152) count=64 cpp_weights=$WORK/resnet152.pth py_weights=$WORK/resnet152.pth ;;
    mobilenet_v2) count=512 cpp_weights=data/weights/mobilenet_v2.pkm py_weights= ;;
  esac
  record $PYTHON $PEER flops --model $model
  common=(--images="$WORK/png" --count=$count --batch=$BATCH --threads=$THREADS)
  for ((repeat = 1; repeat <= REPEATS; ++repeat)); do
    echo "$model repetition $repeat: load average $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"
    record "$CPP" --model=$model --weights="$cpp_weights" "${common[@]}" --pipeline=overlap
    record $PYTHON $PEER run --model $model --weights "$py_weights" "${common[@]}" --workers=0
    record $PYTHON $PEER run --model $model --weights "$py_weights" "${common[@]}" --workers=1
    record env "${MALLOC_TUNING[@]}" $PYTHON $PEER run --model $model \
      --weights "$py_weights" "${common[@]}" --workers=1 --channels_last
    record "$CPP" --model=$model --weights="$cpp_weights" "${common[@]}" --pipeline=serial
    record "$CPP" --mode=conv --threads=$THREADS
    record "$CPP" --model=$model --weights="$cpp_weights" "${common[@]}" --mode=forward
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RESULTS"
$PYTHON backbones/benchmark/summarize_throughput.py "$RESULTS"
