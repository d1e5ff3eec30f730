#!/usr/bin/env bash
# make fuzz: runs each libFuzzer target for a bounded time, starting from its
# seed corpus (fuzz/corpus/<target>/) and first replaying every input kept in
# fuzz/crashes/<target>/ (crashes found before: they must not crash again).
# New corpus entries go to the build tree, never into the repo. Fails when a
# target crashes (its input is left in BUILD/fuzz/artifacts/<target>/), and
# prints executions per second per target.
#
# usage: fuzz/run.sh BIN_DIR [SECONDS_PER_TARGET] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1
seconds=${2:-60}
shift $(( $# >= 2 ? 2 : $# ))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(request_parser aggregate result_json redis_replies worker_message)
fi
work=$(dirname "$bin")/fuzz
# Input size caps: enough for every seed, small enough to keep runs fast.
declare -A max_len=([aggregate]=8192 [worker_message]=4096)

failed=()
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  dirs=("$work/corpus/$t" "fuzz/corpus/$t")
  [ -d "fuzz/crashes/$t" ] && dirs+=("fuzz/crashes/$t")
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  log="$work/$t.log"
  echo "--- fuzz_$t (${seconds} s)"
  set +e
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len="${max_len[$t]:-4096}" -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$t/" "${dict[@]}" "${dirs[@]}" \
      >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -ao '[0-9]*$' || true)
  rate=$(grep -ao 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -ao '[0-9]*$' || true)
  cov=$(grep -ao 'cov: [0-9]*' "$log" | tail -n 1 || true)
  summary+=("$(printf '%-16s %10s runs %8s exec/s  %s' "$t" "${execs:-?}" "${rate:-?}" "${cov}")")
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    echo "fuzz_$t FAILED (exit $rc); the end of its log ($log):"
    tail -n 60 "$log"
    ls -l "$work/artifacts/$t/" || true
  fi
done
echo
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz targets that failed: ${failed[*]}"
  exit 1
fi
