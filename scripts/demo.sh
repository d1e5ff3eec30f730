#!/usr/bin/env bash
# make demo: start a local fleet (one coordinator, two workers; in-process state, no Redis)
# and a local HTTP target, run a sample job of 100 API calls (with some 404s, 500s, a flaky
# endpoint and a few bad lines), show the results and the fleet, then a rate-limited job
# against an API that refuses the 11th request in a second, then the gateway with an
# optional service that goes down and comes back; then stop everything.
set -euo pipefail
bin=${1:-build/bin}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# wait_port FILE: waits for "listening on HOST:PORT" in FILE and prints PORT.
wait_port() {
  for _ in $(seq 1 200); do
    if grep -q 'listening on' "$1" 2>/dev/null; then
      grep -o 'listening on [^ ]*' "$1" | head -n 1 | sed 's/.*://'
      return
    fi
    sleep 0.05
  done
  echo "no 'listening on' line in $1:" >&2
  cat "$1" >&2
  exit 1
}

"$bin/fetchfleet-testserver" >"$work/target.log" 2>&1 &
pids+=($!)
target_port=$(wait_port "$work/target.log")

"$bin/fetchfleet-coordinator" --listen 127.0.0.1:0 2>"$work/coordinator.log" &
pids+=($!)
coordinator="127.0.0.1:$(wait_port "$work/coordinator.log")"

for name in worker-1 worker-2; do
  # The demo target is on loopback, which the egress policy refuses unless allowed.
  "$bin/fetchfleet-worker" --coordinator "$coordinator" --name "$name" \
    --allow-cidr 127.0.0.0/8 2>"$work/$name.log" &
  pids+=($!)
done
for name in worker-1 worker-2; do
  for _ in $(seq 1 100); do grep -q "worker $name (" "$work/coordinator.log" && break; sleep 0.05; done
done

api="http://127.0.0.1:$target_port"
{
  echo "# 100 API calls: users, a slow endpoint, some 404s and 500s, a flaky one"
  for i in $(seq 1 100); do
    if (( i % 25 == 0 )); then echo "{\"id\": \"user-$i\", \"url\": \"$api/status/500\"}"
    elif (( i % 10 == 0 )); then echo "{\"id\": \"user-$i\", \"url\": \"$api/status/404\"}"
    elif (( i % 13 == 0 )); then echo "{\"id\": \"user-$i\", \"url\": \"$api/flaky/user-$i/1\"}"
    else echo "{\"id\": \"user-$i\", \"url\": \"$api/json/user-$i\", \"headers\": {\"Accept\": \"application/json\"}}"
    fi
  done
  echo "# three bad lines: each gets its own error, the job goes on"
  echo "ftp://example.com/not-http"
  echo "{\"url\": \"http://169.254.169.254/latest/meta-data/\", \"id\": \"metadata\"}"
  echo "{\"url\": broken json"
} >"$work/job.txt"

echo "== a local fleet: coordinator at $coordinator, workers worker-1 and worker-2"
echo "== job: $(grep -vc '^#' "$work/job.txt") lines ($work/job.txt)"
echo "\$ fetchctl --coordinator $coordinator submit job.txt > results.jsonl"
set +e
"$bin/fetchctl" --coordinator "$coordinator" submit "$work/job.txt" >"$work/results.jsonl"
status=$?
set -e
echo "(exit status $status: 1 means some requests failed, as some were meant to)"
echo
echo "== the first results (JSON Lines, one per request, in completion order):"
head -n 5 "$work/results.jsonl"
echo "..."
echo
echo "== failures:"
grep -v '"ok": true' "$work/results.jsonl" | cut -c1-220
echo
echo "== results per worker:"
grep -o '"worker": "[^"]*"' "$work/results.jsonl" | sort | uniq -c
echo
echo "\$ fetchctl workers"
"$bin/fetchctl" --coordinator "$coordinator" workers
echo
echo "\$ fetchctl jobs"
"$bin/fetchctl" --coordinator "$coordinator" jobs
echo
echo "== a rate-limited API: it answers 429 to the 11th request in any second."
echo "== 30 calls with --rate demo-api=9/s: the fleet's two workers share the limit, none is refused."
for i in $(seq 1 30); do
  echo "{\"id\": \"limited-$i\", \"url\": \"$api/strict/demo-api/10?i=$i\", \"rate_key\": \"demo-api\"}"
done >"$work/limited.txt"
echo "\$ fetchctl submit --rate demo-api=9/s limited.txt"
"$bin/fetchctl" --coordinator "$coordinator" submit --no-progress --rate demo-api=9/s \
  "$work/limited.txt" >"$work/limited.jsonl"
echo "429s seen: $(grep -c '"status": 429' "$work/limited.jsonl" || true); results: $(wc -l <"$work/limited.jsonl")"
echo
echo "\$ fetchctl limits list"
"$bin/fetchctl" --coordinator "$coordinator" limits list
echo
echo "== the gateway: one call fans out to the user, product and recommendation services"
echo "== (recommendations is optional, with a fallback); then recommendations goes down and comes back."
cat >"$work/page.json" <<DOC
{"parts": [
  {"name": "user", "url": "$api/switch/users", "rate_key": "users"},
  {"name": "product", "url": "$api/switch/products", "rate_key": "products"},
  {"name": "recommendations", "url": "$api/switch/recs", "rate_key": "recs", "required": false, "fallback": []}],
 "deadline_ms": 800}
DOC
"$bin/fetchctl" --coordinator "$coordinator" breakers set recs --open 2s >/dev/null
aggregate() { "$bin/fetchctl" --coordinator "$coordinator" aggregate "$work/page.json" 2>"$work/agg.err"; tail -n 1 "$work/agg.err"; }
echo "\$ fetchctl aggregate page.json"
aggregate
curl -s "$api/switch/recs/down" >/dev/null
echo "-- recommendations is down (503):"
for i in $(seq 1 16); do aggregate | paste -sd' ' | cut -c1-200; done
echo "\$ fetchctl breakers list"
"$bin/fetchctl" --coordinator "$coordinator" breakers list
curl -s "$api/switch/recs/up" >/dev/null
echo "-- recommendations is back; after the open period one probe closes the breaker:"
sleep 2.2
for i in $(seq 1 3); do aggregate | paste -sd' ' | cut -c1-200; sleep 0.3; done
echo

echo "== the same job with no servers at all: fetchctl run --allow-cidr 127.0.0.0/8 job.txt"
set +e
"$bin/fetchctl" run --allow-cidr 127.0.0.0/8 --no-progress "$work/job.txt" >/dev/null
set -e
echo
echo "demo done; the fleet is stopped."
