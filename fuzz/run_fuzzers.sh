#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for a bounded time on its seed
# corpus and fails if any of them finds a crash, a leak, a timeout or an
# out-of-memory input:
#   fuzz/run_fuzzers.sh [--time=SECONDS] [--work_dir=DIR] [TARGET...]
# TARGET is a name from fuzz/BUILD.bazel such as idx_file_fuzzer. Each target
# runs for SECONDS (default 30) in one process. Outside `bazel test` the
# script first builds the targets with `bazel build --config=fuzz`.
#
# Work folder (default: a new temporary folder, removed unless a target
# fails): <target>/corpus, the seeds plus the inputs libFuzzer found
# interesting; <target>/log, libFuzzer's output; and the crashing inputs
# libFuzzer saves as <target>/crash-*, leak-*, timeout-* or oom-*. The
# summary table on stdout gives each target's execution count and result.
#
# As the sh_test //fuzz:run_fuzzers_test it takes the binaries from its
# runfiles and the time from PANDA_FUZZ_SECONDS (default 20).
set -euo pipefail

seconds=30
work_dir=""
targets=()
for argument in "$@"; do
  case $argument in
    --time=*) seconds=${argument#--time=} ;;
    --work_dir=*) work_dir=${argument#--work_dir=} ;;
    -*) echo "run_fuzzers: unknown option $argument" >&2; exit 2 ;;
    *) targets+=("$argument") ;;
  esac
done

all_targets=(
  idx_file_fuzzer
  cifar_file_fuzzer
  image_decoding_fuzzer
  mask_decoding_fuzzer
  mvtec_ad_layout_fuzzer
  pipeline_config_fuzzer
  config_override_fuzzer
  pickle_reader_fuzzer
  torch_checkpoint_fuzzer
  keras_model_file_fuzzer
  torchscript_fuzzer
  feature_cache_fuzzer
  hnsw_index_file_fuzzer
)
if ((${#targets[@]} == 0)); then targets=("${all_targets[@]}"); fi

if [[ -n ${TEST_SRCDIR:-} ]]; then
  # Under `bazel test`: binaries and source files are runfiles.
  root="$TEST_SRCDIR/panda"
  bin_dir="$root/fuzz"
  seconds=${PANDA_FUZZ_SECONDS:-20}
  work_dir=${work_dir:-$TEST_TMPDIR/fuzz}
else
  root="$(cd "$(dirname "$0")/.." && pwd)"
  cd "$root"
  bazel build --config=fuzz "${targets[@]/#/\/\/fuzz:}" >&2
  bin_dir="$(bazel info --config=fuzz bazel-bin 2>/dev/null)/fuzz"
fi

# Leaks inside the uninstrumented Debian libraries are known and listed
# there; leaks in the project's code still fail the run.
export LSAN_OPTIONS="suppressions=$root/tools/sanitizers/lsan_suppressions.txt${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

keep_work_dir=1
if [[ -z $work_dir ]]; then
  work_dir=$(mktemp -d "${TMPDIR:-/tmp}/panda_fuzz.XXXXXX")
  keep_work_dir=0
fi
mkdir -p "$work_dir"
echo "run_fuzzers: working in $work_dir, $seconds s per target" >&2

# A libFuzzer dictionary of the words that pipeline configs are made of:
# every field and message name of the project's .proto files and the type
# URLs of the plugin options.
write_config_dictionary() {
  local dictionary=$1
  (
    cd "$root"
    find . -name '*.proto' -not -path './bazel-*' -not -path '*/node_modules/*' |
      xargs sed -nE \
        -e 's/^ *(optional|repeated)? *[A-Za-z0-9_.]+ +([a-z_0-9]+) *= *[0-9]+.*/"\2"/p' \
        -e 's/^ *message +([A-Za-z0-9_]+).*/"type.googleapis.com\/panda.\1"/p' \
        -e 's/^ *([A-Z][A-Z0-9_]+) *= *[0-9]+;.*/"\1"/p' |
      sort -u
    printf '"%s"\n' "{" "}" ":" "[" "]" "options" "name" "true" "false" "inf" "nan"
  ) >"$dictionary"
}

# Copies the seed files that no target writes itself into `corpus`. Under
# `bazel test` the configs are not runfiles, so the pipeline config target
# starts from its own seeds only.
add_repository_seeds() {
  local target=$1 corpus=$2 file
  shopt -s nullglob
  case $target in
    torch_checkpoint_fuzzer)
      for file in "$root"/backbones/testdata/checkpoint_*.pth; do
        cp "$file" "$corpus"/
      done ;;
    torchscript_fuzzer)
      for file in "$root"/backbones/testdata/tiny_scripted.pt; do
        cp "$file" "$corpus"/
      done ;;
    pipeline_config_fuzzer)
      for file in "$root"/configs/*.pbtxt "$root"/configs/*/*.pbtxt; do
        cp "$file" "$corpus/$(basename "$(dirname "$file")")_$(basename "$file")"
      done ;;
  esac
  shopt -u nullglob
}

printf '| target | seconds | executions | corpus files | result |\n'
printf '|---|---:|---:|---:|---|\n'
failed=()
for target in "${targets[@]}"; do
  binary="$bin_dir/$target"
  target_dir="$work_dir/$target"
  corpus="$target_dir/corpus"
  mkdir -p "$corpus" "$target_dir/tmp"
  "$binary" --write_seeds="$corpus" >"$target_dir/seeds.log" 2>&1 || {
    echo "run_fuzzers: $target failed to write its seeds:" >&2
    cat "$target_dir/seeds.log" >&2
    failed+=("$target")
    continue
  }
  add_repository_seeds "$target" "$corpus"

  options=(
    -max_total_time="$seconds"
    # One input may take at most this long; slower ones are reported as
    # timeouts, which fail the run.
    -timeout=25
    -rss_limit_mb=4096
    -print_final_stats=1
    -artifact_prefix="$target_dir/"
  )
  case $target in
    pipeline_config_fuzzer | config_override_fuzzer)
      write_config_dictionary "$work_dir/config.dict"
      options+=(-dict="$work_dir/config.dict") ;;
  esac

  status=0
  TMPDIR="$target_dir/tmp" "$binary" "${options[@]}" "$corpus" \
    >"$target_dir/log" 2>&1 || status=$?
  executions=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' \
    "$target_dir/log" | tail -1)
  corpus_files=$(find "$corpus" -type f | wc -l)
  if ((status == 0)); then
    result="no crash"
  else
    artifact=$(ls "$target_dir" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' |
      head -1 || true)
    result="FAILED (exit $status${artifact:+, $artifact})"
    failed+=("$target")
  fi
  printf '| %s | %s | %s | %s | %s |\n' "$target" "$seconds" \
    "${executions:-?}" "$corpus_files" "$result"
done

if ((${#failed[@]} > 0)); then
  echo "run_fuzzers: failed: ${failed[*]}; logs and inputs in $work_dir" >&2
  exit 1
fi
if ((keep_work_dir == 0)); then rm -rf "$work_dir"; fi
