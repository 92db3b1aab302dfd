#!/usr/bin/env bash
# End-to-end checks of segmentation runs: small synthetic-defect runs with
# both segmenters, their files, and bad configs. Each bad config must give
# one clear message, a non-zero exit, and no result folder.
set -uo pipefail

panda="$TEST_SRCDIR/panda/apps/panda"
weights="$TEST_SRCDIR/panda/data/weights/mobilenet_v2.pkm"
texture="$TEST_SRCDIR/panda/data/textures/burlap.png"
work="$TEST_TMPDIR/segmentation"
rm -rf "$work"
mkdir -p "$work"
failures=0

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

# Writes $work/$1.pbtxt: a small synthetic-defect segmentation run with the
# segmenter block $2 and extra top-level text $3.
write_config() {
  cat >"$work/$1.pbtxt" <<CONFIG
name: "$1"
dataset {
  name: "synthetic_defects"
  options {
    [type.googleapis.com/panda.SyntheticDefectsOptions] {
      texture: "$texture" image_size: 64
      train_images: 12 test_good_images: 4 test_images_per_defect: 4
    }
  }
}
backbone { name: "keras" options { [type.googleapis.com/panda.KerasBackboneOptions] { weights_file: "$weights" input_size: 96 } } }
segmentation { segmenter { $2 } pictures: 4 }
batch_size: 16
output_dir: "$work/results"
cache_dir: "$work/cache"
$3
CONFIG
}

expect_error() {
  local name=$1 pattern=$2
  local output
  output=$("$panda" run "$work/$name.pbtxt" 2>&1)
  [[ $? -eq 0 ]] && fail "$name: exit status 0, expected an error"
  grep -q -- "$pattern" <<<"$output" || fail "$name: output lacks \"$pattern\": $output"
  [[ -e $work/results/$name ]] && fail "$name: wrote results despite the error"
  echo "ok: $name -> $(grep -i 'error' <<<"$output" | head -1)"
}

is_png() { [[ $(head -c 4 "$1" | od -An -c | tr -d ' ') == "211PNG" ]]; }

core='name: "patch_core" options { [type.googleapis.com/panda.PatchCoreSegmenterOptions] { taps: [ "block_5_add", "block_12_add" ] coreset_fraction: 0.25 } }'
knn='name: "patch_knn" options { [type.googleapis.com/panda.PatchKnnSegmenterOptions] { taps: [ "block_5_add", "block_12_add" ] nearest_images: 4 } }'

for run in core knn; do
  write_config "$run" "${!run}" ""
  if ! "$panda" run "$work/$run.pbtxt" >"$work/$run.out" 2>"$work/$run.err"; then
    fail "$run: $(cat "$work/$run.err")"
    continue
  fi
  grep -q "pixel-AUC" "$work/$run.out" || fail "$run: no pixel-AUC column in $(cat "$work/$run.out")"
  folder="$work/results/$run"
  for file in results.json results.csv results.md roc.png pixel_roc.png; do
    [[ -s $folder/$file ]] || fail "$run: $file missing"
  done
  is_png "$folder/pixel_roc.png" || fail "$run: pixel_roc.png is not a PNG file"
  pictures=$(ls "$folder/pictures" 2>/dev/null | wc -l)
  [[ $pictures -eq 4 ]] || fail "$run: $pictures pictures, expected 4"
  for picture in "$folder"/pictures/*.png; do
    is_png "$picture" || fail "$run: $picture is not a PNG file"
  done
  grep -q '"pixel_roc_auc"' "$folder/results.json" || fail "$run: results.json lacks pixel_roc_auc"
  grep -q '"mean_aupro"' "$folder/results.json" || fail "$run: results.json lacks mean_aupro"
  header=$(head -1 "$folder/results.csv")
  [[ $header == *",pixel_roc_auc,aupro" ]] || fail "$run: CSV header $header"
done

# The core run's 25% coreset keeps a quarter of 12 images x 12x12 patches.
grep -q '"memory_bank_patches": 432' "$work/results/core/results.json" ||
  fail "core: memory bank is not 432 patches: $(grep memory_bank "$work/results/core/results.json")"

# A data set without masks, an unknown tap, an adapter, an unknown segmenter.
cat >"$work/no_masks.pbtxt" <<CONFIG
name: "no_masks"
dataset { name: "idx" options { [type.googleapis.com/panda.IdxDatasetOptions] { directory: "/usr/share/datasets/fashion-mnist" } } }
backbone { name: "keras" options { [type.googleapis.com/panda.KerasBackboneOptions] { weights_file: "$weights" input_size: 96 } } }
segmentation { segmenter { $core } }
subset { max_train_per_class: 4 max_test_per_class: 2 }
normal_classes: [0]
output_dir: "$work/results"
cache_dir: ""
CONFIG
expect_error no_masks "needs ground-truth masks"
write_config bad_tap "${core/block_12_add/block_99_add}" ""
expect_error bad_tap "tap \"block_99_add\" is not an output of backbone keras"
write_config adapted "$core" 'adapter { name: "early_stopping" }'
expect_error adapted 'adapter "early_stopping" must be "none"'
write_config unknown "${core/patch_core/patch_kore}" ""
expect_error unknown 'unknown segmenter "patch_kore"'

# A memory budget below the estimate stops the run before its patch
# features, and panda check reports the same estimate. The core run needs
# about 2 MiB, most of it the 12x12x128 float patches of 12 images.
write_config over_budget "$core" 'memory_budget_mib: 1'
expect_error over_budget "more than the memory budget of 1 MiB (memory_budget_mib)"
"$panda" check "$work/over_budget.pbtxt" >"$work/check.out" 2>&1 && fail "check over_budget: exit status 0"
grep -q "FAILED  memory estimate: the run needs about [0-9]* MiB for images, features, patch bank and maps" "$work/check.out" ||
  fail "check over_budget: $(cat "$work/check.out")"

# panda check: the sound config passes and lists its patch grid; a bad tap
# and missing weights fail, each named.
"$panda" check "$work/core.pbtxt" >"$work/check.out" 2>&1 || fail "check core: $(cat "$work/check.out")"
grep -q "patch features on a 12x12 grid, 128 channels" "$work/check.out" ||
  fail "check core: $(cat "$work/check.out")"
"$panda" check "$work/bad_tap.pbtxt" >"$work/check.out" 2>&1 && fail "check bad_tap: exit status 0"
grep -q "FAILED  segmenter patch_core: .*block_99_add" "$work/check.out" ||
  fail "check bad_tap: $(cat "$work/check.out")"
write_config no_weights "$core" ""
sed -i "s|$weights|$work/absent.pkm|" "$work/no_weights.pbtxt"
"$panda" check "$work/no_weights.pbtxt" >"$work/check.out" 2>&1 && fail "check no_weights: exit status 0"
grep -q "FAILED  backbone keras: .*absent.pkm" "$work/check.out" ||
  fail "check no_weights: $(cat "$work/check.out")"

if ((failures > 0)); then
  echo "$failures checks failed" >&2
  exit 1
fi
echo "all segmentation checks passed"
