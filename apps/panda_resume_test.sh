#!/usr/bin/env bash
# A run killed with SIGKILL in mid-training and started again resumes from
# its last epoch checkpoint and ends with the same results as a run that
# was never interrupted. Deep SVDD on the small LeNet keeps it to seconds.
set -uo pipefail

panda="$TEST_SRCDIR/panda/apps/panda"
work="$TEST_TMPDIR/resume"
rm -rf "$work"
mkdir -p "$work"

# Writes the config $1 with cache folder $2.
write_config() {
  cat >"$work/$1.pbtxt" <<CONFIG
name: "$1"
dataset { name: "idx" options { [type.googleapis.com/panda.IdxDatasetOptions] {
  directory: "/usr/share/datasets/fashion-mnist" } } }
backbone { name: "lenet" options { [type.googleapis.com/panda.LenetBackboneOptions] { seed: 1 } } }
adapter { name: "deep_svdd" options { [type.googleapis.com/panda.DeepSvddOptions] {
  training { epochs: 20 batch_size: 50 } } } }
scorer { name: "head" }
subset { max_train_per_class: 600 max_test_per_class: 50 }
normal_classes: [3]
num_threads: 2
output_dir: "$work/results"
cache_dir: "$2"
CONFIG
}

write_config uninterrupted "$work/cache_a"
write_config interrupted "$work/cache_b"
if ! "$panda" run "$work/uninterrupted.pbtxt" >"$work/uninterrupted.log" 2>&1; then
  echo "FAIL: the uninterrupted run failed:" >&2
  tail -5 "$work/uninterrupted.log" >&2
  exit 1
fi

# Kill the second run once it has finished a few epochs.
"$panda" run "$work/interrupted.pbtxt" >"$work/killed.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  grep -q "epoch 3:" "$work/killed.log" && break
  sleep 0.05
done
kill -9 "$pid"
wait "$pid" 2>/dev/null
if [[ -e $work/results/interrupted ]]; then
  echo "FAIL: the killed run left results behind" >&2
  exit 1
fi

if ! "$panda" run "$work/interrupted.pbtxt" >"$work/resumed.log" 2>&1; then
  echo "FAIL: the resumed run failed:" >&2
  tail -5 "$work/resumed.log" >&2
  exit 1
fi
if ! grep -q "resuming from .* after epoch" "$work/resumed.log"; then
  echo "FAIL: the second run did not resume from a checkpoint:" >&2
  grep -m3 "epoch" "$work/resumed.log" >&2
  exit 1
fi
grep "resuming" "$work/resumed.log"

# Scores, metrics and per-epoch records must agree; only timings may differ.
strip_timings() {
  grep -v -E '"(seconds|wall_seconds|started_at|pipeline|images_per_second)":' "$1"
}
if ! diff <(strip_timings "$work/results/uninterrupted/results.json") \
          <(strip_timings "$work/results/interrupted/results.json") >"$work/diff.txt"; then
  echo "FAIL: the resumed run's results differ from the uninterrupted run's:" >&2
  head -20 "$work/diff.txt" >&2
  exit 1
fi
echo "ok: resumed after SIGKILL with identical results ($(grep -o '"roc_auc": [0-9.]*' "$work/results/interrupted/results.json" | head -1))"
