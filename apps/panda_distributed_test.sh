#!/usr/bin/env bash
# `panda run` as 2 and 4 ranks over 127.0.0.1 against one process:
#   1. kNN scores and metrics, and the extracted features, agree with one
#      process's (features within 1e-5, because a rank's batches hold other
#      images than one process's);
#   2. data-parallel adaptation gives one process's training records and
#      metrics with the same global batch, and ranks that would resume
#      from different checkpoints stop with an error;
#   3. a rerun after the whole-split cache files are gone loads every rank's
#      shard file and extracts nothing;
#   4. a rank killed with SIGKILL, or stopped with SIGSTOP, makes the other
#      rank exit non-zero with a message naming the failed operation within
#      PANDA_DIST_TIMEOUT_S, and a rerun resumes from the shards written;
#   5. ranks given other configs or another WORLD_SIZE, and a lone RANK=1,
#      fail with an error naming the disagreement.
# The small LeNet on Fashion-MNIST keeps each run to seconds.
set -uo pipefail

panda="$TEST_SRCDIR/panda/apps/panda"
launch="$TEST_SRCDIR/panda/tools/launch_local.sh"
compare="$TEST_SRCDIR/panda/distributed/compare_runs.py"
work="$TEST_TMPDIR/distributed"
rm -rf "$work"
mkdir -p "$work"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Writes config $1 with adapter block $2 and subset block $3.
write_config() {
  cat >"$work/$1.pbtxt" <<CONFIG
name: "$1"
dataset { name: "idx" options { [type.googleapis.com/panda.IdxDatasetOptions] {
  directory: "/usr/share/datasets/fashion-mnist" } } }
backbone { name: "lenet" options { [type.googleapis.com/panda.LenetBackboneOptions] { seed: 1 } } }
adapter { $2 }
scorer { name: "knn" }
subset { $3 }
normal_classes: [3, 5]
num_threads: 1
CONFIG
}

# Runs config $1 as $2 ranks (1 runs a plain process) with cache folder $3
# and output folder $4, logging to $4.log. A failed run fails the test.
run_ranks() {
  local config=$1 ranks=$2 cache=$3 output=$4
  local command=("$panda" run "$work/$config.pbtxt" --cache_dir="$cache"
                 --output_dir="$output")
  if ((ranks == 1)); then
    timeout 300 "${command[@]}" >"$output.log" 2>&1
  else
    PANDA_DIST_TIMEOUT_S=60 timeout 300 "$launch" "$ranks" -- "${command[@]}" \
      >"$output.log" 2>&1
  fi || {
    tail -20 "$output.log" >&2
    fail "config $config on $ranks ranks failed (log above)"
  }
}

# The cache file of split $2 in folder $1 (not a shard).
split_file() {
  ls "$1"/"$2"-*.features 2>/dev/null | head -1
}

# --- 1. kNN and extraction: 1, 2 and 4 ranks ------------------------------
write_config knn 'name: "none"' 'max_train_per_class: 200 max_test_per_class: 50'
run_ranks knn 1 "$work/cache1" "$work/out1"
for ranks in 2 4; do
  run_ranks knn "$ranks" "$work/cache$ranks" "$work/out$ranks"
  grep -q "extracted .* train features shard $((ranks - 1)) of $ranks" \
    "$work/out$ranks.log" || fail "$ranks ranks: no rank extracted a shard"
  python3 "$compare" results "$work/out1/knn/results.json" \
    "$work/out$ranks/knn/results.json" 1e-5 ||
    fail "$ranks ranks: results differ from one process's"
  for split in train test; do
    python3 "$compare" features "$(split_file "$work/cache1" "$split")" \
      "$(split_file "$work/cache$ranks" "$split")" 1e-5 ||
      fail "$ranks ranks: $split features differ from one process's"
  done
  [[ -e $work/out$ranks/knn/results.json ]] || fail "rank 0 wrote no results"
done
echo "ok: 2 and 4 ranks give one process's kNN results and features"

# --- 2. Data-parallel adaptation: 1 and 2 ranks, global batch 30 ----------
write_config adapted 'name: "early_stopping" options {
  [type.googleapis.com/panda.EarlyStoppingOptions] {
    training { epochs: 3 batch_size: 30 } } }' \
  'max_train_per_class: 100 max_test_per_class: 30'
run_ranks adapted 1 "" "$work/adapted1"
run_ranks adapted 2 "" "$work/adapted2"
grep -q "data parallel over 2 ranks" "$work/adapted2.log" ||
  fail "the 2-rank adaptation did not train data parallel"
# Each rank sums its half of a batch, so float32 sums run in another order
# and differ by about 1e-7 relative per step. The 12 steps per class (3
# epochs of 4 batches) stay far below the 1e-4 allowed.
python3 "$compare" results "$work/adapted1/adapted/results.json" \
  "$work/adapted2/adapted/results.json" 1e-4 ||
  fail "data-parallel adaptation differs from one process's"
echo "ok: data-parallel adaptation gives one process's results"

# Ranks that do not share rank 0's checkpoints must not train from
# different epochs: rank 0 finds the finished checkpoints of a
# single-process run, rank 1 an empty cache folder.
run_ranks adapted 1 "$work/checkpointed" "$work/checkpointed_out"
port=$(free_port)
pids=()
for rank in 0 1; do
  cache="$work/checkpointed"
  ((rank == 0)) || cache="$work/empty_cache"
  MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=$rank \
    PANDA_DIST_TIMEOUT_S=60 timeout 300 "$panda" run "$work/adapted.pbtxt" \
    --cache_dir="$cache" --output_dir="$work/mixed_out" \
    >"$work/mixed.rank$rank.log" 2>&1 &
  pids+=($!)
done
for rank in 0 1; do
  if wait "${pids[rank]}"; then fail "rank $rank ran with checkpoints of another epoch"; fi
done
grep -q "rank 1 resumes training after epoch 0 but rank 0 after epoch 3" \
  "$work/mixed.rank0.log" || {
  tail -3 "$work/mixed.rank0.log" >&2
  fail "ranks with different checkpoints: rank 0's error does not say so"
}
echo "ok: ranks that resume from different epochs stop with an error"

# --- 3. Resume from shard files -------------------------------------------
rm -f "$(split_file "$work/cache2" train)" "$(split_file "$work/cache2" test)"
run_ranks knn 2 "$work/cache2" "$work/resumed2"
for rank in 0 1; do
  grep -q "rank $rank/2: loaded .* train features shard $rank of 2" \
    "$work/resumed2.log" || fail "rank $rank did not load its train shard"
done
if grep -q "extracted .* shard" "$work/resumed2.log"; then
  fail "the rerun extracted features although every shard was on disk"
fi
python3 "$compare" results "$work/out1/knn/results.json" \
  "$work/resumed2/knn/results.json" 1e-5 || fail "the rerun's results differ"
echo "ok: a rerun loads every rank's shard"

# --- 4. A rank that dies or stops ------------------------------------------
write_config large 'name: "none"' 'max_train_per_class: 4000'

# Starts config "large" as 2 ranks with cache folder $1 and timeout $2 s,
# logging rank R to $1.rankR.log, and sets `pids`.
start_ranks() {
  local port
  port=$(free_port)
  pids=()
  for rank in 0 1; do
    MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=$rank \
      PANDA_DIST_TIMEOUT_S=$2 "$panda" run "$work/large.pbtxt" \
      --cache_dir="$1" --output_dir="$1.out" >"$1.rank$rank.log" 2>&1 &
    pids+=($!)
  done
}

# Sends signal $2 to rank 1 once log $1 shows it extracting its train
# shard. Rank 0 then extracts its own shard and writes it before it waits
# for rank 1's.
signal_during_train_shard() {
  for _ in $(seq 1 3000); do
    grep -q "train features shard 1 of 2 \[" "$1" && break
    sleep 0.02
  done
  kill "-$2" "${pids[1]}"
}

# Waits for rank 0 and checks it failed within $1 seconds with a message
# naming a distributed operation; $2 describes the case.
expect_rank0_failure() {
  local limit=$1 case=$2 log=$3 start=$SECONDS
  local waited=0
  while kill -0 "${pids[0]}" 2>/dev/null && ((waited < limit * 10 + 300)); do
    sleep 0.1
    ((waited += 1))
  done
  if kill -0 "${pids[0]}" 2>/dev/null; then
    kill -9 "${pids[0]}"
    fail "$case: rank 0 still ran $((waited / 10)) s after rank 1 stopped"
  fi
  wait "${pids[0]}"
  local code=$?
  ((code != 0)) || fail "$case: rank 0 exited 0"
  grep -q "panda: error: distributed .* failed on rank 0 of 2" "$log" || {
    tail -3 "$log" >&2
    fail "$case: rank 0's error does not name the failed operation"
  }
  echo "ok: $case: rank 0 exited $code after $((SECONDS - start)) s:"
  grep "panda: error:" "$log"
}

start_ranks "$work/killed" 30
signal_during_train_shard "$work/killed.rank1.log" 9
wait "${pids[1]}" 2>/dev/null
expect_rank0_failure 30 "rank 1 killed" "$work/killed.rank0.log"
[[ -e $work/killed.out/large ]] && fail "the failed job wrote results"

start_ranks "$work/stopped" 3
signal_during_train_shard "$work/stopped.rank1.log" STOP
expect_rank0_failure 3 "rank 1 stopped" "$work/stopped.rank0.log"
kill -9 "${pids[1]}"
wait "${pids[1]}" 2>/dev/null

# The killed job's rank 0 wrote its train shard before the exchange
# failed, and rank 1 wrote none.
run_ranks large 2 "$work/killed" "$work/killed_rerun"
grep -q "rank 0/2: loaded .* train features shard 0 of 2" "$work/killed_rerun.log" ||
  fail "the rerun after the kill did not resume from rank 0's train shard"
grep -q "rank 1/2: extracted .* train features shard 1 of 2" "$work/killed_rerun.log" ||
  fail "the rerun after the kill did not extract rank 1's missing shard"
run_ranks large 1 "$work/large_single" "$work/large_single_out"
python3 "$compare" results "$work/large_single_out/large/results.json" \
  "$work/killed_rerun/large/results.json" 1e-5 ||
  fail "the resumed job's results differ from one process's"
echo "ok: the rerun resumed from the shards already written"

# --- 5. Ranks that disagree -------------------------------------------------
# Starts "knn" as 2 ranks, rank 1 with the extra arguments $1 and the
# environment assignments $2, and expects both ranks to fail. Rank $3's log
# must match pattern $4.
expect_disagreement() {
  local rank1_arguments=$1 rank1_environment=$2 named_rank=$3 pattern=$4
  local port
  port=$(free_port)
  pids=()
  for rank in 0 1; do
    local extra=() environment=()
    if ((rank == 1)); then
      read -r -a extra <<<"$rank1_arguments"
      read -r -a environment <<<"$rank1_environment"
    fi
    env MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" WORLD_SIZE=2 RANK=$rank \
      PANDA_DIST_TIMEOUT_S=20 "${environment[@]}" timeout 120 "$panda" run \
      "$work/knn.pbtxt" --cache_dir="$work/disagree_cache" \
      --output_dir="$work/disagree_out" "${extra[@]}" \
      >"$work/disagree.rank$rank.log" 2>&1 &
    pids+=($!)
  done

  local codes=()
  for rank in 0 1; do
    wait "${pids[rank]}"
    codes+=($?)
  done
  ((codes[0] != 0 && codes[1] != 0)) ||
    fail "disagreement ($pattern): exit statuses ${codes[*]}"
  ((codes[0] != 124 && codes[1] != 124)) ||
    fail "disagreement ($pattern): a rank hung until the timeout"

  grep -q "$pattern" "$work/disagree.rank$named_rank.log" || {
    tail -3 "$work/disagree.rank$named_rank.log" >&2
    fail "disagreement: rank $named_rank's log lacks \"$pattern\""
  }
  [[ -e $work/disagree_out/knn ]] && fail "ranks that disagree wrote results"
  echo "ok: rank 1 with \"$rank1_arguments$rank1_environment\" fails: $pattern"
}
expect_disagreement "--classes=3" "" 0 \
  "rank 1's config differs from rank 0's"
expect_disagreement "--set subset.max_train_per_class=20" "" 1 \
  "rank 1's config differs from rank 0's"
# Rank 1 with WORLD_SIZE=3: it names both sizes. Rank 0 fails inside Gloo.
expect_disagreement "" "WORLD_SIZE=3" 1 "WORLD_SIZE is 3 here but 2 on rank 0"

# A rank other than 0 without WORLD_SIZE would run the whole job alone.
RANK=1 "$panda" run "$work/knn.pbtxt" --output_dir="$work/lone_out" \
  >"$work/lone.log" 2>&1 && fail "RANK=1 without WORLD_SIZE ran"
grep -q 'RANK="1" is set, but WORLD_SIZE is unset' "$work/lone.log" ||
  fail "RANK=1 without WORLD_SIZE: $(tail -1 "$work/lone.log")"
echo "ok: RANK=1 without WORLD_SIZE is rejected"
