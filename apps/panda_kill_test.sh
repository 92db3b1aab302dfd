#!/usr/bin/env bash
# Crash safety of everything a run writes: runs are killed with SIGKILL at
# random moments, and after each kill every result, cache, index and picture
# file present must be complete and loadable. A final rerun must then
# finish with the results of a run that was never interrupted.
#
# Two pipelines cover the writers: a Fashion-MNIST run with the hnsw
# scorer (feature caches, an index file, result tables and ROC chart) and a
# synthetic-defect segmentation run (pixel ROC chart and pictures). The
# index is built on one thread, so that every run builds the same graph.
set -uo pipefail

panda="$TEST_SRCDIR/panda/apps/panda"
weights="$TEST_SRCDIR/panda/data/weights/mobilenet_v2.pkm"
texture="$TEST_SRCDIR/panda/data/textures/burlap.png"
fashion=/usr/share/datasets/fashion-mnist
python=/usr/bin/python3
work="$TEST_TMPDIR/kill"
rm -rf "$work"
mkdir -p "$work"
failures=0
kills=${PANDA_KILLS:-8}
RANDOM=${PANDA_KILL_SEED:-7}

for file in "$weights" "$texture"; do
  if [[ ! -f $file ]]; then
    echo "missing $file: run ./setup.sh first" >&2
    exit 1
  fi
done

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

keras="backbone { name: \"keras\" options { [type.googleapis.com/panda.KerasBackboneOptions] { weights_file: \"$weights\" input_size: 96 } } }"
cat >"$work/knn.pbtxt" <<CONFIG
name: "knn"
dataset { name: "idx" options { [type.googleapis.com/panda.IdxDatasetOptions] { directory: "$fashion" } } }
$keras
scorer { name: "hnsw" options { [type.googleapis.com/panda.HnswScorerOptions] { k: 2 num_threads: 1 } } }
subset { max_train_per_class: 30 max_test_per_class: 20 }
normal_classes: [0, 1, 2]
batch_size: 32
CONFIG
cat >"$work/segmentation.pbtxt" <<CONFIG
name: "segmentation"
dataset {
  name: "synthetic_defects"
  options {
    [type.googleapis.com/panda.SyntheticDefectsOptions] {
      texture: "$texture" image_size: 64
      train_images: 16 test_good_images: 6 test_images_per_defect: 6
    }
  }
}
$keras
segmentation {
  segmenter { name: "patch_core" options { [type.googleapis.com/panda.PatchCoreSegmenterOptions] { taps: [ "block_5_add", "block_12_add" ] coreset_fraction: 0.2 } } }
  pictures: 6
}
batch_size: 16
CONFIG

# Runs pipeline $1 with its results in $2 and its cache in $3.
run() {
  "$panda" run "$work/$1.pbtxt" --output_dir="$2" --cache_dir="$3"
}

# Fails unless every file under folder $1 is complete: JSON parses, PNGs
# end with their IEND chunk, feature caches and indexes load (checked by the
# rerun, which must not warn about them), and no result folder lacks a file.
check_files() {
  local folder=$1 file
  while IFS= read -r -d '' file; do
    case $file in
      *.json)
        "$python" -c 'import json, sys; json.load(open(sys.argv[1]))' "$file" 2>/dev/null ||
          fail "incomplete JSON $file" ;;
      *.png)
        [[ $(tail -c 8 "$file" | od -An -tx1 | tr -d ' \n') == "49454e44ae426082" ]] ||
          fail "incomplete PNG $file" ;;
    esac
  done < <(find "$folder" -type f -print0 2>/dev/null)
  local results
  for results in "$folder"/results/*/; do
    [[ -d $results ]] || continue
    [[ $results == *.tmp-* || $results == *.old-* ]] && continue
    for file in results.json results.csv results.md roc.png config.pbtxt; do
      [[ -s $results/$file ]] || fail "result folder $results lacks $file"
    done
  done
}

for pipeline in knn segmentation; do
  # The reference: one uninterrupted run, timed to spread the kills over it.
  start=$(date +%s%N)
  run "$pipeline" "$work/reference" "$work/reference_cache" >"$work/$pipeline.reference" 2>&1 ||
    { fail "$pipeline: reference run failed: $(tail -5 "$work/$pipeline.reference")"; continue; }
  duration_ms=$(( ($(date +%s%N) - start) / 1000000 ))

  state="$work/$pipeline.state"
  mkdir -p "$state"
  for ((i = 1; i <= kills; i++)); do
    delay_ms=$(( RANDOM % (duration_ms + 1) ))
    run "$pipeline" "$state/results" "$state/cache" >"$state/run$i.log" 2>&1 &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    echo "$pipeline: killed run $i after $delay_ms ms of about $duration_ms"
    check_files "$state"
  done

  run "$pipeline" "$state/results" "$state/cache" >"$state/final.log" 2>&1 ||
    { fail "$pipeline: rerun after the kills failed: $(tail -5 "$state/final.log")"; continue; }
  # Any warning of the rerun means it found a damaged cache or index file.
  grep "WARNING" "$state/final.log" && fail "$pipeline: the rerun warned about its files"
  check_files "$state"
  diff <(grep "^mean" "$work/$pipeline.reference") <(grep "^mean" "$state/final.log") ||
    fail "$pipeline: results after the kills differ from the uninterrupted run"
done

if ((failures > 0)); then
  echo "$failures checks failed" >&2
  exit 1
fi
echo "all kill checks passed"
