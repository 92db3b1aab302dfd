#!/usr/bin/env bash
# Checks tools/compare_benchmark_json.py on two hand-written reports whose
# ratios are known: unit conversion, median aggregates, failed and
# one-sided benchmarks, the threshold and the exit status.
set -uo pipefail

tool="$TEST_SRCDIR/panda/tools/compare_benchmark_json.py"
work="$TEST_TMPDIR/compare"
mkdir -p "$work"
cd "$work" || exit 1
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# BM_Slow: 100 ns -> 150 ns, ratio 1.5. BM_Fast: 2 ms -> 1000 us, ratio 0.5
# across units. BM_Repeated: the median aggregates 1 ms -> 1.05 ms, ratio
# 1.05, while the means (5 ms -> 1.05 ms) would be flagged FASTER.
cat >before.json <<'JSON'
{
  "context": {"num_cpus": 2},
  "benchmarks": [
    {"name": "BM_Slow", "run_type": "iteration", "real_time": 100, "cpu_time": 100, "time_unit": "ns"},
    {"name": "BM_Fast", "run_type": "iteration", "real_time": 2, "cpu_time": 2, "time_unit": "ms"},
    {"name": "BM_Repeated", "run_type": "iteration", "real_time": 1, "cpu_time": 1, "time_unit": "ms"},
    {"name": "BM_Repeated_mean", "run_name": "BM_Repeated", "run_type": "aggregate", "aggregate_name": "mean", "real_time": 5, "cpu_time": 5, "time_unit": "ms"},
    {"name": "BM_Repeated_median", "run_name": "BM_Repeated", "run_type": "aggregate", "aggregate_name": "median", "real_time": 1, "cpu_time": 1, "time_unit": "ms"},
    {"name": "BM_Broken", "run_type": "iteration", "error_occurred": true, "error_message": "no weights"},
    {"name": "BM_Removed", "run_type": "iteration", "real_time": 1, "cpu_time": 1, "time_unit": "us"}
  ]
}
JSON
cat >after.json <<'JSON'
{
  "context": {"num_cpus": 2},
  "benchmarks": [
    {"name": "BM_Slow", "run_type": "iteration", "real_time": 150, "cpu_time": 150, "time_unit": "ns"},
    {"name": "BM_Fast", "run_type": "iteration", "real_time": 1000, "cpu_time": 1000, "time_unit": "us"},
    {"name": "BM_Repeated_mean", "run_name": "BM_Repeated", "run_type": "aggregate", "aggregate_name": "mean", "real_time": 1.05, "cpu_time": 1.05, "time_unit": "ms"},
    {"name": "BM_Repeated_median", "run_name": "BM_Repeated", "run_type": "aggregate", "aggregate_name": "median", "real_time": 1.05, "cpu_time": 1.05, "time_unit": "ms"},
    {"name": "BM_Broken", "run_type": "iteration", "real_time": 1, "cpu_time": 1, "time_unit": "ms"},
    {"name": "BM_Added", "run_type": "iteration", "real_time": 1, "cpu_time": 1, "time_unit": "ms"}
  ]
}
JSON

python3 "$tool" before.json after.json >default.out 2>&1
code=$?
[[ $code -eq 1 ]] || fail "default threshold: exit status $code, expected 1"
grep -qE '^BM_Slow +100\.0 ns +150\.0 ns +1\.500 +SLOWER$' default.out ||
  fail "BM_Slow row: $(cat default.out)"
grep -qE '^BM_Fast +2\.000 ms +1\.000 ms +0\.500 +FASTER$' default.out ||
  fail "BM_Fast row: $(cat default.out)"
grep -qE '^BM_Repeated +1\.000 ms +1\.050 ms +1\.050$' default.out ||
  fail "BM_Repeated row: $(cat default.out)"
grep -q '^failed in before.json: BM_Broken$' default.out ||
  fail "failed benchmark not listed: $(cat default.out)"
grep -q '^only in before.json: BM_Removed$' default.out ||
  fail "removed benchmark not listed: $(cat default.out)"
grep -q '^only in after.json: BM_Added$' default.out ||
  fail "added benchmark not listed: $(cat default.out)"
grep -q '^1 of 3 benchmarks are more than 10% slower$' default.out ||
  fail "no count of slower benchmarks: $(cat default.out)"

# With a 60% threshold BM_Slow (1.5) passes; BM_Fast (0.5 < 1 / 1.6) is
# still flagged FASTER, which does not fail.
python3 "$tool" before.json after.json --threshold 0.6 >wide.out 2>&1 ||
  fail "threshold 0.6: exit status $?: $(cat wide.out)"
grep -qE '^BM_Slow .* 1\.500$' wide.out || fail "BM_Slow flagged at 0.6: $(cat wide.out)"
grep -qE '^BM_Fast .* FASTER$' wide.out || fail "BM_Fast not FASTER at 0.6: $(cat wide.out)"

# Bad input: one message naming the file, exit status 2.
echo "not json" >bad.json
python3 "$tool" before.json bad.json >bad.out 2>&1
code=$?
[[ $code -eq 2 ]] || fail "bad JSON: exit status $code, expected 2"
grep -q "bad.json: invalid JSON" bad.out || fail "bad JSON: $(cat bad.out)"
echo '{"benchmarks": [{"real_time": 1}]}' >nameless.json
python3 "$tool" nameless.json after.json >nameless.out 2>&1
[[ $? -eq 2 ]] || fail "nameless benchmark: exit status not 2"
grep -q "nameless.json: benchmarks\[0\] has no name" nameless.out ||
  fail "nameless benchmark: $(cat nameless.out)"

if ((failures > 0)); then
  echo "$failures checks failed" >&2
  exit 1
fi
echo "all compare_benchmark_json checks passed"
