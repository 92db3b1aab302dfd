#!/usr/bin/env bash
# End-to-end checks of the panda app: a small real run, a cached rerun, and
# bad input. Each bad input must give one clear message naming the file or
# field at fault, a non-zero exit, and no result file.
set -uo pipefail

panda="$TEST_SRCDIR/panda/apps/panda"
weights="$TEST_SRCDIR/panda/data/weights/mobilenet_v2.pkm"
fashion=/usr/share/datasets/fashion-mnist
work="$TEST_TMPDIR/app"
rm -rf "$work"
mkdir -p "$work/data"
failures=0

if [[ ! -f $weights ]]; then
  echo "missing $weights: run ./setup.sh first" >&2
  exit 1
fi

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# Writes a pipeline config to $work/$1.pbtxt. Arguments: name, data folder,
# weights file, input size, extra text.
write_config() {
  cat >"$work/$1.pbtxt" <<CONFIG
name: "$1"
dataset { name: "idx" options { [type.googleapis.com/panda.IdxDatasetOptions] { directory: "$2" } } }
backbone { name: "keras" options { [type.googleapis.com/panda.KerasBackboneOptions] { weights_file: "$3" input_size: $4 } } }
scorer { name: "knn" options { [type.googleapis.com/panda.KnnScorerOptions] { k: 2 } } }
subset { max_train_per_class: 4 max_test_per_class: 3 }
normal_classes: [0, 1]
batch_size: 16
output_dir: "$work/results"
cache_dir: "$work/cache"
$5
CONFIG
}

# Runs panda on config $1 and expects failure with a message matching $2.
expect_error() {
  local name=$1 pattern=$2
  local output
  output=$("$panda" run "$work/$name.pbtxt" 2>&1)
  local code=$?
  if [[ $code -eq 0 ]]; then
    fail "$name: exit status 0, expected an error"
  fi
  if ! grep -q -- "$pattern" <<<"$output"; then
    fail "$name: output lacks \"$pattern\": $output"
  fi
  if [[ -e $work/results/$name ]]; then
    fail "$name: wrote results despite the error"
  fi
  echo "ok: $name -> $(grep 'error' <<<"$output" | head -1)"
}

# A small real run on Fashion-MNIST, then the same run from the cache.
write_config good "$fashion" "$weights" 64 ""
if ! "$panda" run "$work/good.pbtxt" >"$work/good.out" 2>"$work/good.err"; then
  fail "good: $(cat "$work/good.err")"
fi
grep -q "^mean" "$work/good.out" || fail "good: no mean ROC-AUC row"
for file in results.json results.csv results.md roc.png config.pbtxt; do
  [[ -s $work/results/good/$file ]] || fail "good: $file missing"
done
[[ $(head -c 4 "$work/results/good/roc.png" | od -An -c | tr -d ' ') == "211PNG" ]] ||
  fail "good: roc.png is not a PNG file"
"$panda" run "$work/good.pbtxt" >"$work/again.out" 2>"$work/again.err"
grep -q "from the cache" "$work/again.out" || fail "rerun did not use the cache"
diff <(grep "^mean" "$work/good.out") <(grep "^mean" "$work/again.out") ||
  fail "cached rerun changed the mean ROC-AUC"

# Overrides on the command line, then a comparison of the two runs.
"$panda" run "$work/good.pbtxt" --set name=good_k1 --set scorer.knn.k=1 \
  >"$work/k1.out" 2>"$work/k1.err" || fail "good_k1: $(cat "$work/k1.err")"
grep -q "k: 1" "$work/results/good_k1/config.pbtxt" ||
  fail "good_k1: config.pbtxt does not record the override"
"$panda" compare "$work/results/good/results.json" \
  "$work/results/good_k1/results.json" >"$work/compare.out" 2>&1 ||
  fail "compare: $(cat "$work/compare.out")"
grep -q "^| \*\*mean\*\* |" "$work/compare.out" ||
  fail "compare: no mean row in $(cat "$work/compare.out")"
[[ -e $work/results/good/training.png ]] &&
  fail "good: training.png written for a run without training"

# A short Deep SVDD run records its training: training.png beside roc.png,
# and plot-training charts it beside a run without training.
cat >"$work/svdd.pbtxt" <<CONFIG
name: "svdd"
dataset { name: "idx" options { [type.googleapis.com/panda.IdxDatasetOptions] { directory: "$fashion" } } }
backbone { name: "lenet" options { [type.googleapis.com/panda.LenetBackboneOptions] { seed: 0 } } }
adapter { name: "deep_svdd" options { [type.googleapis.com/panda.DeepSvddOptions] { training { epochs: 2 } } } }
scorer { name: "head" }
subset { max_train_per_class: 8 max_test_per_class: 3 }
normal_classes: [0]
batch_size: 16
output_dir: "$work/results"
cache_dir: "$work/svdd_cache"
CONFIG
"$panda" run "$work/svdd.pbtxt" >"$work/svdd.out" 2>&1 ||
  fail "svdd: $(cat "$work/svdd.out")"
[[ $(head -c 4 "$work/results/svdd/training.png" | od -An -c | tr -d ' ') == "211PNG" ]] ||
  fail "svdd: training.png missing or not a PNG file"
"$panda" plot-training "$work/results/svdd/results.json" \
  "$work/results/good/results.json" --output="$work/variance.png" \
  >"$work/plot.out" 2>&1 || fail "plot-training: $(cat "$work/plot.out")"
[[ $(head -c 4 "$work/variance.png" | od -An -c | tr -d ' ') == "211PNG" ]] ||
  fail "plot-training: variance.png missing or not a PNG file"

# plot-training without a run that trained, with a missing file, and
# without --output.
"$panda" plot-training "$work/results/good/results.json" \
  --output="$work/untrained.png" >"$work/bad.out" 2>&1 &&
  fail "plot-training untrained: exit status 0"
grep -q "none of the runs (good) has training records" "$work/bad.out" ||
  fail "plot-training untrained: $(cat "$work/bad.out")"
[[ -e $work/untrained.png ]] && fail "plot-training untrained: wrote a chart"
"$panda" plot-training "$work/results/svdd/results.json" "$work/absent.json" \
  --output="$work/absent.png" >"$work/bad.out" 2>&1 &&
  fail "plot-training absent: exit status 0"
grep -q "absent.json" "$work/bad.out" ||
  fail "plot-training absent: $(cat "$work/bad.out")"
[[ -e $work/absent.png ]] && fail "plot-training absent: wrote a chart"
"$panda" plot-training "$work/results/svdd/results.json" >"$work/bad.out" 2>&1
code=$?
[[ $code -eq 2 ]] || fail "plot-training without --output: exit status $code, expected 2"
grep -q -- "--output" "$work/bad.out" ||
  fail "plot-training without --output: $(cat "$work/bad.out")"
write_config bad_override "$fashion" "$weights" 64 ""
"$panda" run "$work/bad_override.pbtxt" --set scorer.knn.kk=1 >"$work/bad.out" 2>&1 &&
  fail "bad_override: exit status 0"
grep -q 'has no field "kk"' "$work/bad.out" || fail "bad_override: $(cat "$work/bad.out")"
[[ -e $work/results/bad_override ]] && fail "bad_override: wrote results"
"$panda" run "$work/bad_override.pbtxt" --threads=2000 >"$work/bad.out" 2>&1 &&
  fail "threads: exit status 0"
grep -q "num_threads must be in" "$work/bad.out" || fail "threads: $(cat "$work/bad.out")"

# Missing data folder.
write_config missing_data "$work/no-such-folder" "$weights" 64 ""
expect_error missing_data "no-such-folder"

# Truncated and wrong-magic IDX files.
mkdir -p "$work/truncated" "$work/magic"
for split in train t10k; do
  cp "$fashion/$split-labels-idx1-ubyte.gz" "$work/truncated/"
  cp "$fashion/$split-labels-idx1-ubyte.gz" "$work/magic/"
  cp "$fashion/$split-images-idx3-ubyte.gz" "$work/magic/"
done
gzip -dc "$fashion/train-images-idx3-ubyte.gz" | head -c 5000 \
  >"$work/truncated/train-images-idx3-ubyte"
cp "$fashion/t10k-images-idx3-ubyte.gz" "$work/truncated/"
gzip -dc "$fashion/train-images-idx3-ubyte.gz" >"$work/magic/raw"
rm "$work/magic/train-images-idx3-ubyte.gz"
{ printf '\x00\x00\x08\x01'; tail -c +5 "$work/magic/raw"; } \
  >"$work/magic/train-images-idx3-ubyte"
rm "$work/magic/raw"
write_config truncated "$work/truncated" "$weights" 64 ""
expect_error truncated "truncated/train-images-idx3-ubyte"
write_config magic "$work/magic" "$weights" 64 ""
expect_error magic "magic"

# Config typos: an unknown field and an unknown plugin.
write_config typo "$fashion" "$weights" 64 "batch_sise: 3"
expect_error typo "batch_sise"
write_config plugin "$fashion" "$weights" 64 ""
sed -i 's/name: "knn"/name: "kmn"/' "$work/plugin.pbtxt"
expect_error plugin "registered: .*knn"

# Missing and truncated weights.
write_config no_weights "$fashion" "$work/absent.pkm" 64 ""
expect_error no_weights "absent.pkm"
head -c 100000 "$weights" >"$work/cut.pkm"
write_config cut_weights "$fashion" "$work/cut.pkm" 64 ""
expect_error cut_weights "cut.pkm"

# A feature cache file of another backbone configuration put in this one's
# place.
write_config other "$fashion" "$weights" 32 ""
"$panda" run "$work/other.pbtxt" >/dev/null 2>&1 || fail "other: run failed"
target=$(ls "$work/cache"/train-*.features | head -1)
for file in "$work/cache"/train-*.features; do
  [[ $file -nt $target ]] && target=$file
done
for file in "$work/cache"/train-*.features; do
  [[ $file != "$target" ]] && cp "$file" "$target"
done
rm -rf "$work/results/other"
expect_error other "was written for another backbone"

if ((failures > 0)); then
  echo "$failures checks failed" >&2
  exit 1
fi
echo "all app checks passed"
