#!/usr/bin/env bash
# Runs every test, installing what is missing first. Extra arguments go to
# `bazel test`, e.g. ./test.sh --test_output=all.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
bazel test //... "$@"
