#!/usr/bin/env bash
# Runs a test with the LeakSanitizer suppressions of this folder.
# `bazel test --config=asan` puts it in front of every test (--run_under in
# .bazelrc), because a test's environment can only name files by absolute
# path, and .bazelrc cannot. Bazel places this script and its data in the
# runfiles of the test it runs.
set -euo pipefail
suppressions="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lsan_suppressions.txt"
if [[ ! -f $suppressions ]]; then
  echo "run_with_suppressions: missing $suppressions" >&2
  exit 1
fi
export LSAN_OPTIONS="suppressions=$suppressions${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
exec "$@"
