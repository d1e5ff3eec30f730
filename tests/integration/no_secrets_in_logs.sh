#!/usr/bin/env bash
# The integration suite's log check: every coordinator, worker and fetchctl the
# tests ran kept its stderr in $1 (FETCHFLEET_TEST_LOG_DIR). Tests hand out
# secrets that start with "ffsecret" (tokens, Authorization and Cookie header
# values, Redis passwords); none may appear in any log line, nor may a private
# key. Run by ctest after every integration test (a fixture cleanup).
set -euo pipefail
dir=$1
count=$(find "$dir" -name '*.log' | wc -l)
if [ "$count" -lt 10 ]; then
  echo "only $count logs in $dir: the integration tests did not keep their logs" >&2
  exit 1
fi
if grep -rl -e ffsecret -e 'PRIVATE KEY' "$dir"; then
  echo "secrets in the logs above:" >&2
  grep -rn -e ffsecret -e 'PRIVATE KEY' "$dir" | head -20 >&2
  exit 1
fi
echo "no secret in $count logs"
