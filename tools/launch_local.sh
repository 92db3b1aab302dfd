#!/usr/bin/env bash
# Runs a command as N ranks of one job on this machine, with the variables
# that torchrun sets (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK,
# LOCAL_RANK), over the loopback interface:
#
#   tools/launch_local.sh 4 -- ./panda run configs/fashion_mnist_mobilenet_v2_knn.pbtxt
#
# Each rank's output lines start with "[rank R] ". The port is one that the
# operating system reports free, unless MASTER_PORT is set. Exits with the
# first non-zero status among the ranks (0 when all succeed). A rank that
# fails makes the others fail within PANDA_DIST_TIMEOUT_S seconds.
set -uo pipefail

usage() {
  echo "usage: $0 RANKS -- COMMAND [ARGUMENT ...]" >&2
  exit 2
}

(($# >= 3)) || usage
ranks=$1
[[ $ranks =~ ^[1-9][0-9]*$ ]] || {
  echo "$0: RANKS must be a positive integer, got \"$ranks\"" >&2
  exit 2
}
[[ $2 == "--" ]] || usage
shift 2

if [[ -z ${MASTER_PORT:-} ]]; then
  # The port is free now; another program could take it before rank 0
  # binds it, which makes the job fail at start with "address in use".
  MASTER_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || {
    echo "$0: could not find a free port; set MASTER_PORT" >&2
    exit 1
  }
fi

pids=()
for ((rank = 0; rank < ranks; ++rank)); do
  MASTER_ADDR=127.0.0.1 MASTER_PORT=$MASTER_PORT WORLD_SIZE=$ranks \
    RANK=$rank LOCAL_RANK=$rank \
    "$@" > >(sed -u "s/^/[rank $rank] /") 2> >(sed -u "s/^/[rank $rank] /" >&2) &
  pids+=($!)
done

# Passes an interrupt or termination on to every rank, so that stopping
# the launcher (Ctrl-C, a CI timeout) stops the job.
forward() {
  kill "-$1" "${pids[@]}" 2>/dev/null
}
trap 'forward INT' INT
trap 'forward TERM' TERM
trap 'forward HUP' HUP

status=0
for pid in "${pids[@]}"; do
  # A trapped signal ends `wait` early; wait again until the rank exits.
  while wait "$pid"; code=$?; kill -0 "$pid" 2>/dev/null; do :; done
  if ((code != 0 && status == 0)); then status=$code; fi
done
# The prefixing sed processes end when their ranks close their output.
wait
exit "$status"
