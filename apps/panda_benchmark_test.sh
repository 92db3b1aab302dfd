#!/usr/bin/env bash
# End-to-end checks of `panda benchmark` on a tiny matrix of real
# Fashion-MNIST runs. It records a baseline and passes against it. A
# deliberately degraded pipeline must fail, naming the entry and the metric,
# and a result above the baseline must be reported as better. Bad matrices
# are rejected with one message naming the file and the field.
set -uo pipefail

panda="$TEST_SRCDIR/panda/apps/panda"
weights="$TEST_SRCDIR/panda/data/weights/mobilenet_v2.pkm"
fashion=/usr/share/datasets/fashion-mnist
work="$TEST_TMPDIR/benchmark"
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
failures=0

if [[ ! -f $weights ]]; then
  echo "missing $weights: run ./setup.sh first" >&2
  exit 1
fi

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# Prints the value of "key": in the JSON report or results file $1 for the
# entry named $2 (for $2 = "", the first match in the file). Python's json
# module is a parser independent of the C++ one that wrote the file.
json_value() {
  python3 - "$@" <<'PYTHON'
import json, sys
data = json.load(open(sys.argv[1]))
if len(sys.argv) > 3:
    entry = next(e for e in data["entries"] if e["name"] == sys.argv[2])
    check = next(c for c in entry["checks"] if c["metric"] == sys.argv[3])
    print(repr(check[sys.argv[4]]))
else:
    print(repr(data[sys.argv[2]]))
PYTHON
}

# The sound pipeline: MobileNetV2 at 64 px on classes 1 (Trouser) and 7
# (Sneaker), 20 training images of each and 20 test images per class.
cat >sound.pbtxt <<CONFIG
name: "sound"
dataset { name: "idx" options { [type.googleapis.com/panda.IdxDatasetOptions] { directory: "$fashion" } } }
backbone { name: "keras" options { [type.googleapis.com/panda.KerasBackboneOptions] { weights_file: "$weights" input_size: 64 } } }
scorer { name: "knn" options { [type.googleapis.com/panda.KnnScorerOptions] { k: 2 } } }
subset { max_train_per_class: 20 max_test_per_class: 20 }
normal_classes: [1, 7]
batch_size: 32
output_dir: "$work/results"
CONFIG

# Writes matrix $1 whose entry "fashion_knn" runs sound.pbtxt with the
# overrides $2 (set: lines), beside two small speed entries.
write_matrix() {
  cat >"$1" <<MATRIX
entry {
  name: "fashion_knn"
  pipeline { config: "sound.pbtxt" $2 }
  check { metric: "mean_roc_auc" tolerance: 0.01 }
  check { metric: "mean_average_precision" tolerance: 0.01 }
}
entry {
  name: "knn_speed"
  speed { knn_search { queries: 64 bank_rows: 512 dims: 32 } repeats: 3 }
  check { metric: "relative_speed" tolerance: 1000 }
}
entry {
  name: "extraction_speed"
  speed {
    feature_extraction { config: "sound.pbtxt" images: 32 }
    repeats: 2
  }
  check { metric: "relative_speed" tolerance: 1000 }
}
MATRIX
}

write_matrix sound_matrix.pbtxt ""
# A preprocessing flag broken on purpose: pixels scaled to [-1, 1] where the
# network was trained on [0, 1]. On this subset it costs about 3 points of
# mean ROC-AUC, three times the tolerance.
write_matrix degraded_matrix.pbtxt 'set: "backbone.keras.input_scaling=SYMMETRIC"'

# Without a baseline: an error that names the file and the update command,
# before any entry runs.
"$panda" benchmark sound_matrix.pbtxt >missing.out 2>&1 &&
  fail "missing baseline: exit status 0"
grep -q "sound_baseline.pbtxt not found" missing.out ||
  fail "missing baseline: $(cat missing.out)"
grep -q "./panda benchmark sound_matrix.pbtxt --update_baseline" missing.out ||
  fail "missing baseline: no update command in $(cat missing.out)"
grep -q "^benchmark \[" missing.out && fail "missing baseline: entries ran"

# Recording the baseline from the sound pipeline.
"$panda" benchmark sound_matrix.pbtxt --update_baseline --json=update.json \
  >update.out 2>update.err || fail "update: $(cat update.out update.err)"
[[ -s sound_baseline.pbtxt ]] || fail "update: no sound_baseline.pbtxt"
for entry in fashion_knn knn_speed extraction_speed; do
  grep -q "name: \"$entry\"" sound_baseline.pbtxt ||
    fail "update: $entry missing from the baseline"
  grep -q "benchmark \[.*\] $entry: done" update.err ||
    fail "update: no progress line for $entry in $(cat update.err)"
done

# The benchmark's ROC-AUC must be what `panda run` computes for the same
# config, and the baseline must hold it.
"$panda" run sound.pbtxt >run.out 2>&1 || fail "run: $(cat run.out)"
run_auc=$(json_value results/sound/results.json mean_roc_auc)
measured_auc=$(json_value update.json fashion_knn mean_roc_auc measured)
python3 -c "import sys; sys.exit(abs($run_auc - $measured_auc) > 1e-9)" ||
  fail "benchmark measured $measured_auc, panda run $run_auc"
python3 -c "import sys; sys.exit(not 0.85 < $run_auc <= 1)" ||
  fail "sound pipeline's ROC-AUC $run_auc is implausible"
baseline_auc=$(grep -A3 'metric: "mean_roc_auc"' sound_baseline.pbtxt |
  sed -nE 's/.*expected: ([0-9.e-]+).*/\1/p')
python3 -c "import sys; sys.exit(abs($baseline_auc - $run_auc) > 1e-6)" ||
  fail "baseline holds $baseline_auc, panda run gave $run_auc"

# The sound pipeline against its own baseline passes.
"$panda" benchmark sound_matrix.pbtxt --json=pass.json >pass.out 2>pass.err ||
  fail "pass: exit status $?: $(cat pass.out pass.err)"
grep -qE "^fashion_knn +mean_roc_auc .* pass " pass.out ||
  fail "pass: no pass row in $(cat pass.out)"
[[ $(json_value pass.json fashion_knn mean_roc_auc verdict) == "'PASS'" ]] ||
  fail "pass: JSON verdict is not PASS"
grep -q "REGRESSION" pass.out && fail "pass: a regression was reported"

# The degraded pipeline against the sound baseline fails and names the
# entry and the metric.
"$panda" benchmark degraded_matrix.pbtxt --baseline=sound_baseline.pbtxt \
  --entries=fashion_knn --json=regression.json >regression.out 2>regression.err
code=$?
[[ $code -eq 1 ]] || fail "regression: exit status $code, expected 1"
grep -q 'REGRESSION in entry "fashion_knn", metric "mean_roc_auc"' \
  regression.err || fail "regression: not named in $(cat regression.err)"
grep -qE "^fashion_knn +mean_roc_auc .* REGRESSION " regression.out ||
  fail "regression: no REGRESSION row in $(cat regression.out)"
[[ -s regression.json ]] || fail "regression: no JSON report"
degraded_auc=$(json_value regression.json fashion_knn mean_roc_auc measured)
python3 -c "import sys; sys.exit(not $degraded_auc < $baseline_auc - 0.01)" ||
  fail "regression: degraded $degraded_auc is within the tolerance"

# The sound pipeline against a baseline of the degraded one passes, and the
# output requests a baseline update.
cp degraded_matrix.pbtxt low_matrix.pbtxt
"$panda" benchmark low_matrix.pbtxt --update_baseline --entries=fashion_knn \
  >low.out 2>&1 || fail "degraded update: $(cat low.out)"
"$panda" benchmark sound_matrix.pbtxt --baseline=low_baseline.pbtxt \
  --entries=fashion_knn >better.out 2>&1 ||
  fail "better: exit status $?: $(cat better.out)"
grep -q 'better than the baseline: entry "fashion_knn", metric "mean_roc_auc"' \
  better.out || fail "better: not reported in $(cat better.out)"
grep -q -- "--baseline=low_baseline.pbtxt --entries=fashion_knn --update_baseline" \
  better.out ||
  fail "better: no update command in $(cat better.out)"

# Bad matrices: one message naming the file and the field, nothing run.
expect_bad_matrix() {
  local name=$1 text=$2 pattern=$3
  printf '%s\n' "$text" >"$name.pbtxt"
  "$panda" benchmark "$name.pbtxt" >"$name.out" 2>&1
  local code=$?
  [[ $code -eq 1 ]] || fail "$name: exit status $code, expected 1"
  grep -q -- "$pattern" "$name.out" || fail "$name: $(cat "$name.out")"
  grep -q "^benchmark \[" "$name.out" && fail "$name: entries ran"
  echo "ok: $name -> $(grep error "$name.out")"
}
check='check { metric: "mean_roc_auc" tolerance: 0.01 }'
expect_bad_matrix typo "entry { name: \"a\" pipeline { config: \"sound.pbtxt\" } chek { } }" \
  'typo.pbtxt: invalid benchmark matrix: line 1, column .*"chek"'
expect_bad_matrix no_config "entry { name: \"a\" pipeline { config: \"absent.pbtxt\" } $check }" \
  'no_config.pbtxt: entry "a": pipeline.config: .*absent.pbtxt'
expect_bad_matrix metric "entry { name: \"a\" pipeline { config: \"sound.pbtxt\" } check { metric: \"mean_roc_acu\" tolerance: 0.01 } }" \
  'metric.pbtxt: entry "a": check\[0\].metric: unknown metric "mean_roc_acu"'
expect_bad_matrix override "entry { name: \"a\" pipeline { config: \"sound.pbtxt\" set: \"scorer.knn.kk=3\" } $check }" \
  'override.pbtxt: entry "a": pipeline.set\[0\]: .*has no field "kk"'

"$panda" benchmark sound_matrix.pbtxt --entries=nope >entries.out 2>&1 &&
  fail "--entries=nope: exit status 0"
grep -q 'has no entry "nope"; entries: fashion_knn, knn_speed' entries.out ||
  fail "--entries=nope: $(cat entries.out)"
"$panda" benchmark >usage.out 2>&1
code=$?
[[ $code -eq 2 ]] || fail "benchmark without a matrix: exit status $code, expected 2"

# Flags that another command reads, and an empty --entries, fail before
# anything runs instead of being ignored.
"$panda" benchmark sound_matrix.pbtxt --device=cuda >flag.out 2>&1
code=$?
[[ $code -eq 2 ]] || fail "--device with benchmark: exit status $code, expected 2"
grep -q -- "--device does not apply to \`panda benchmark\`" flag.out ||
  fail "--device with benchmark: $(cat flag.out)"
"$panda" benchmark sound_matrix.pbtxt --entries= >empty_entries.out 2>&1
code=$?
[[ $code -eq 2 ]] || fail "--entries=: exit status $code, expected 2"
grep -q -- "--entries is empty" empty_entries.out ||
  fail "--entries=: $(cat empty_entries.out)"

# Output paths are checked before any entry runs: a JSON report may not
# overwrite the baseline or the matrix, nor be a folder.
cp sound_baseline.pbtxt kept_baseline.pbtxt
for json in sound_baseline.pbtxt sound_matrix.pbtxt "$work"; do
  "$panda" benchmark sound_matrix.pbtxt --json="$json" >json.out 2>&1 &&
    fail "--json=$json: exit status 0"
  grep -q -- "--json: .*$(basename "$json")" json.out ||
    fail "--json=$json: $(cat json.out)"
  grep -q "^benchmark \[" json.out && fail "--json=$json: entries ran"
done
cmp -s sound_baseline.pbtxt kept_baseline.pbtxt ||
  fail "a rejected --json changed the baseline"

# An update against a baseline that shares no entry with the matrix would
# wipe it: rejected, and the file is kept byte for byte.
printf 'entry { name: "other" value { metric: "mean_roc_auc" expected: 0.9 } }\n' \
  >other_baseline.pbtxt
cp other_baseline.pbtxt other_kept.pbtxt
"$panda" benchmark sound_matrix.pbtxt --baseline=other_baseline.pbtxt \
  --update_baseline --entries=knn_speed >other.out 2>&1 &&
  fail "update of another matrix's baseline: exit status 0"
grep -q "has none of the entries of sound_matrix.pbtxt" other.out ||
  fail "update of another matrix's baseline: $(cat other.out)"
cmp -s other_baseline.pbtxt other_kept.pbtxt ||
  fail "update of another matrix's baseline changed it"

# A non-finite expected value could never fail a check.
sed 's/expected: [0-9.e-]*/expected: nan/' sound_baseline.pbtxt >nan_baseline.pbtxt
"$panda" benchmark sound_matrix.pbtxt --baseline=nan_baseline.pbtxt \
  >nan.out 2>&1 && fail "nan baseline: exit status 0"
grep -q "expected value nan is not a finite number" nan.out ||
  fail "nan baseline: $(cat nan.out)"

if ((failures > 0)); then
  echo "$failures checks failed" >&2
  exit 1
fi
echo "all benchmark checks passed"
