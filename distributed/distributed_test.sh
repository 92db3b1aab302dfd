#!/usr/bin/env bash
# Runs distributed_check's equality checks as 2 and 4 processes over
# 127.0.0.1, each bounded by a timeout.
set -uo pipefail

check="$TEST_SRCDIR/panda/distributed/distributed_check"

for mode in "$@"; do
  for ranks in 2 4; do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    pids=()
    for ((rank = 0; rank < ranks; ++rank)); do
      MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=$ranks RANK=$rank \
        PANDA_DIST_TIMEOUT_S=60 timeout 300 "$check" "$mode" \
        >"$TEST_TMPDIR/$mode-$ranks-$rank.log" 2>&1 &
      pids+=($!)
    done
    for ((rank = 0; rank < ranks; ++rank)); do
      if ! wait "${pids[rank]}"; then
        cat "$TEST_TMPDIR/$mode-$ranks-$rank.log" >&2
        echo "FAIL: $mode on $ranks ranks: rank $rank failed (log above)" >&2
        exit 1
      fi
    done
    grep -h "equal" "$TEST_TMPDIR/$mode-$ranks-0.log"
    echo "ok: $mode on $ranks ranks"
  done
done
