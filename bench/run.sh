#!/usr/bin/env bash
# make bench: the fleet side by side with its peers, in one run, against the same local nginx.
#   1. fleet end to end: fetchctl -> coordinator -> 1 worker -> nginx -> JSON Lines (N URLs)
#      and again with TLS to the coordinator, mTLS for the worker and a token for fetchctl,
#      and again with metrics on (--metrics-listen, scraped every second), and with tracing
#      to an OTLP receiver at 1% and 100% sampling
#   2. curl --parallel --parallel-max 64 over the same N URLs
#   3. wrk -t2 -c64 on the same nginx for a fixed time
#   4. the rate limiter: decisions/s and Redis round trips per decision at 1k/s, 50k/s and
#      unlimited, beside redis-benchmark running the same Lua script; then the fleet end to
#      end under a 1k/s and a 20k/s limit (round trips per request from INFO commandstats)
#   5. the gateway: Aggregate latency p50/p99 at 500 calls/s of 3 parts beside the slowest
#      part's own latency, without and with a concurrent batch job
#   6. durable jobs: the fleet with its coordinator keeping jobs in a store (--data-dir,
#      fsync per commit) alternated with the plain one; the time to resume after a SIGKILL
#      mid-job; the store's size for a detached 10,000,000-line job with no client attached
# then the coordinator's peak RSS (VmHWM) through a 1,000,000-line job.
# Override sizes with BENCH_URLS, BENCH_BIG_URLS and BENCH_DETACHED_URLS.
set -euo pipefail
bin=$(cd "${1:-build/bin}" && pwd)
urls=${BENCH_URLS:-100000}
big_urls=${BENCH_BIG_URLS:-1000000}
detached_urls=${BENCH_DETACHED_URLS:-10000000}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
wait_port() {
  for _ in $(seq 1 200); do
    grep -q 'listening on' "$1" 2>/dev/null && { grep -o 'listening on [^ ]*' "$1" | head -n1 | sed 's/.*://'; return; }
    sleep 0.05
  done
  echo "no 'listening on' in $1" >&2; cat "$1" >&2; exit 1
}

# --- nginx on loopback, serving one small JSON document
port=$(free_port)
mkdir -p "$work/www" "$work/logs"
chmod 755 "$work" "$work/www"  # nginx workers run as www-data
head -c 256 /dev/zero | tr '\0' 'x' | sed 's/^/{"data": "/; s/$/"}/' > "$work/www/item.json"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  default_type application/json;
  server {
    listen 127.0.0.1:$port;
    root $work/www;
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work" -e "$work/logs/error.log"
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/item.json" >/dev/null && break; sleep 0.05; done
curl -sf "http://127.0.0.1:$port/item.json" >/dev/null || { echo "nginx does not serve item.json"; exit 1; }
echo "nginx on 127.0.0.1:$port; body $(wc -c < "$work/www/item.json") bytes"

seq 1 "$urls" | sed "s|^|http://127.0.0.1:$port/item.json?i=|" > "$work/urls.txt"

# --- the fleet: one coordinator, one worker
# start_fleet TAG [FLAGS...]: a fresh coordinator and one worker, both given FLAGS; sets
# coordinator and coordinator_pid.
start_fleet() {
  local tag=$1; shift
  "$bin/fetchfleet-coordinator" --listen 127.0.0.1:0 "$@" 2>"$work/coordinator-$tag.log" &
  coordinator_pid=$!
  pids+=($coordinator_pid)
  coordinator="127.0.0.1:$(wait_port "$work/coordinator-$tag.log")"
  "$bin/fetchfleet-worker" --coordinator "$coordinator" --name bench --allow-cidr 127.0.0.0/8 \
    "$@" 2>"$work/worker-$tag.log" &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q "worker bench (" "$work/coordinator-$tag.log" && break; sleep 0.05; done
}
start_fleet main

# warm-up (connections, page cache)
head -n 2000 "$work/urls.txt" | "$bin/fetchctl" --coordinator "$coordinator" submit --no-progress - >/dev/null 2>"$work/warmup.err" || { echo "warm-up failed:"; cat "$work/warmup.err"; tail "$work/worker-main.log"; exit 1; }

t0=$(now)
"$bin/fetchctl" --coordinator "$coordinator" submit --no-progress "$work/urls.txt" > "$work/fleet.jsonl" 2>"$work/fleet.err"
t1=$(now)
fleet_lines=$(wc -l < "$work/fleet.jsonl")
fleet_ok=$(grep -c '"ok": true' "$work/fleet.jsonl" || true)
fleet_rps=$(python3 -c "print(f'{$fleet_lines / ($t1 - $t0):.0f}')")
echo "fleet:  $fleet_lines results ($fleet_ok ok) in $(python3 -c "print(f'{$t1 - $t0:.2f}')") s = $fleet_rps req/s   [$(tail -n1 "$work/fleet.err")]"

# --- the same fleet with every gRPC link secured: TLS to the coordinator, mTLS for the
# worker, a bearer token for fetchctl (certificates from a CA made here).
tls="$work/tls"
mkdir -p "$tls"
mkcert() {  # mkcert NAME: $tls/NAME.pem and NAME.key, signed by $tls/ca.pem
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$tls/$1.key" \
    -out "$tls/$1.csr" -subj "/CN=$1" 2>/dev/null
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$1" > "$tls/$1.ext"
  openssl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 1 -extfile "$tls/$1.ext" -out "$tls/$1.pem" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$tls/ca.key" \
  -out "$tls/ca.pem" -days 1 -subj "/CN=bench CA" 2>/dev/null
mkcert coordinator.bench
mkcert worker.bench
openssl rand -hex 32 > "$tls/token"
echo "bench submit sha256:$(tr -d '\n' < "$tls/token" | sha256sum | cut -d' ' -f1)" > "$tls/tokens"
"$bin/fetchfleet-coordinator" --listen 127.0.0.1:0 --tls-cert "$tls/coordinator.bench.pem" \
  --tls-key "$tls/coordinator.bench.key" --auth-file "$tls/tokens" --worker-ca "$tls/ca.pem" \
  2>"$work/coordinator-tls.log" &
pids+=($!)
tls_coordinator="127.0.0.1:$(wait_port "$work/coordinator-tls.log")"
client_tls=(--tls-ca "$tls/ca.pem" --tls-server-name coordinator.bench)
"$bin/fetchfleet-worker" --coordinator "$tls_coordinator" --name bench-tls --allow-cidr 127.0.0.0/8 \
  "${client_tls[@]}" --tls-cert "$tls/worker.bench.pem" --tls-key "$tls/worker.bench.key" \
  2>"$work/worker-tls.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q "worker worker.bench/bench-tls (" "$work/coordinator-tls.log" && break; sleep 0.05; done
head -n 2000 "$work/urls.txt" | "$bin/fetchctl" --coordinator "$tls_coordinator" submit "${client_tls[@]}" \
  --token-file "$tls/token" --no-progress - >/dev/null 2>"$work/warmup-tls.err" || { echo "TLS warm-up failed:"; cat "$work/warmup-tls.err"; tail "$work/worker-tls.log"; exit 1; }
# Alternate plaintext and TLS five times (the two fleets stay up) and compare medians: one
# run each is within this machine's run-to-run noise.
timed_job() {  # timed_job OUT COORDINATOR [flags...]: prints req/s of one job over urls.txt
  local out=$1 coord=$2; shift 2
  local t0 t1
  t0=$(now)
  "$bin/fetchctl" --coordinator "$coord" submit "$@" --no-progress "$work/urls.txt" > "$out" 2>"$out.err"
  t1=$(now)
  [ "$(grep -c '"ok": true' "$out" || true)" = "$urls" ] || { echo "a job in a comparison failed:" >&2; tail -n 3 "$out.err" >&2; exit 1; }
  python3 -c "print(f'{$(wc -l < "$out") / ($t1 - $t0):.0f}')"
}
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
# compare NAME DESCRIPTION RUN: the plain fleet and RUN (a command printing req/s) alternated
# 5 times, each side's runs and median printed, then the ratio of the medians.
compare() {
  local name=$1 description=$2 run=$3 plain=() other=()
  for _ in 1 2 3 4 5; do
    plain+=("$(timed_job "$work/cmp-plain.jsonl" "$plain_coordinator")")
    other+=("$($run)")
  done
  local plain_median other_median
  plain_median=$(median "${plain[@]}")
  other_median=$(median "${other[@]}")
  echo "fleet plain, 5 runs: ${plain[*]} req/s (median $plain_median)"
  echo "fleet $description, 5 runs alternated with them: ${other[*]} req/s (median $other_median)"
  echo "ratio fleet $name (medians): $(python3 -c "print(f'{$other_median / $plain_median:.3f}x')")"
}
plain_coordinator=$coordinator
plain_coordinator_pid=$coordinator_pid
run_tls() { timed_job "$work/cmp-tls.jsonl" "$tls_coordinator" "${client_tls[@]}" --token-file "$tls/token"; }
compare "TLS / plaintext" "TLS + mTLS + token on every gRPC link" run_tls

# --- the cost of metrics: a second plaintext fleet with --metrics-listen on the coordinator
# and the worker, scraped every second as Prometheus would, alternated with the plain one.
start_fleet metrics --metrics-listen 127.0.0.1:0
metrics_coordinator=$coordinator
metrics_ports=$(grep -ho 'readyz on [^ ]*' "$work/coordinator-metrics.log" "$work/worker-metrics.log" | sed 's/.*://')
coordinator=$plain_coordinator coordinator_pid=$plain_coordinator_pid
( while :; do for p in $metrics_ports; do curl -sf "http://127.0.0.1:$p/metrics" >/dev/null || true; done; sleep 1; done ) &
pids+=($!)
head -n 2000 "$work/urls.txt" | "$bin/fetchctl" --coordinator "$metrics_coordinator" submit --no-progress - >/dev/null 2>&1
run_metrics() { timed_job "$work/cmp-metrics.jsonl" "$metrics_coordinator"; }
series=$(for p in $metrics_ports; do curl -sf "http://127.0.0.1:$p/metrics"; done | grep -vc '^#')
compare "metrics on / off" "with metrics (scraped every 1 s, $series series)" run_metrics

# --- the cost of durability: a fleet whose coordinator keeps its jobs in a store
# (--data-dir, --store-sync full: every commit fsynced), alternated with the plain one.
FETCHFLEET_DATA_DIR="$work/store-cmp" start_fleet durable
durable_coordinator=$coordinator
coordinator=$plain_coordinator coordinator_pid=$plain_coordinator_pid
head -n 2000 "$work/urls.txt" | "$bin/fetchctl" --coordinator "$durable_coordinator" submit --no-progress - >/dev/null 2>&1
run_durable() { timed_job "$work/cmp-durable.jsonl" "$durable_coordinator"; }
compare "durable / in memory" "jobs in the store (--data-dir, fsync per commit)" run_durable

# Resume: a coordinator on a fixed port SIGKILLed a third of the way into a job and started again;
# the time until it listens with the job restored, and until the client (which reconnects
# by itself) has a new result.
dport=$(free_port)
start_durable() {
  "$bin/fetchfleet-coordinator" --listen "127.0.0.1:$dport" --data-dir "$work/store-resume" \
    2>>"$work/coordinator-resume.log" &
  durable_pid=$!
  pids+=($durable_pid)
}
start_durable
wait_port "$work/coordinator-resume.log" >/dev/null
"$bin/fetchfleet-worker" --coordinator "127.0.0.1:$dport" --name bench --allow-cidr 127.0.0.0/8 \
  2>"$work/worker-resume.log" &
pids+=($!)
"$bin/fetchctl" --coordinator "127.0.0.1:$dport" submit --no-progress "$work/urls.txt" \
  > "$work/resume.jsonl" 2>"$work/resume.err" &
client_pid=$!
for _ in $(seq 1 6000); do [ "$(wc -l < "$work/resume.jsonl")" -ge $(( urls / 3 )) ] && break; sleep 0.005; done
before=$(wc -l < "$work/resume.jsonl")
t0=$(now)
kill -9 "$durable_pid"
wait "$durable_pid" 2>/dev/null || true
start_durable
for _ in $(seq 1 2000); do [ "$(grep -c 'listening on' "$work/coordinator-resume.log")" = 2 ] && break; sleep 0.005; done
t1=$(now)
next_result="no new result within 20 s"
for _ in $(seq 1 4000); do
  [ "$(wc -l < "$work/resume.jsonl")" -gt "$before" ] && { next_result="had its next result $(python3 -c "print(f'{$(now) - $t0:.2f}')") s after it"; break; }
  sleep 0.005
done
wait "$client_pid"
resume_lines=$(wc -l < "$work/resume.jsonl")
resume_ids=$(grep -o '"id": "[0-9]*"' "$work/resume.jsonl" | sort -u | wc -l)
echo "resume after a SIGKILL at $before of $urls results: listening with the job restored $(python3 -c "print(f'{$t1 - $t0:.2f}')") s after the kill [$(grep -o 'restored in [^ ]*' "$work/coordinator-resume.log" | tail -n1)]; the client $next_result (its reconnect backoff included); $resume_lines results, $resume_ids distinct ids"

# The store of a detached job with no client attached: the whole input spooled, the results
# it could deal waiting in its spool (65,536 by default).
if [ "$detached_urls" -gt 0 ]; then
  t0=$(now)
  job=$(seq 1 "$detached_urls" | sed "s|^|http://127.0.0.1:$port/item.json?i=|" |
    "$bin/fetchctl" --coordinator "127.0.0.1:$dport" submit --detach --no-progress - 2>"$work/detached.err")
  t1=$(now)
  sleep 5
  store_bytes=$(du -sb "$work/store-resume" | cut -f1)
  echo "detached $detached_urls-line job $job: accepted in $(python3 -c "print(f'{$t1 - $t0:.1f}')") s ($(python3 -c "print(f'{$detached_urls / ($t1 - $t0):.0f}')") lines/s); store $(python3 -c "print(f'{$store_bytes / 1048576:.0f}')") MiB with no client attached ($(python3 -c "print(f'{$store_bytes / $detached_urls:.0f}')") bytes per line) [$("$bin/fetchctl" --coordinator "127.0.0.1:$dport" status "$job" | grep -E '^progress' | tr -s ' ')]"
  "$bin/fetchctl" --coordinator "127.0.0.1:$dport" cancel "$job" >/dev/null 2>&1 || true
fi
coordinator=$plain_coordinator coordinator_pid=$plain_coordinator_pid

# --- the cost of tracing: fleets exporting spans over OTLP/gRPC to a real receiver (the test
# suite's: Debian's grpcio serving the vendored OTLP protos), sampling 1% and 100% of the
# requests, each alternated with the plain fleet. At 100% the receiver, on the same two
# cores, falls behind and the workers' bounded queues drop spans (counted below).
src=$(cd "$(dirname "$0")/.." && pwd)
/usr/bin/python3 "$src/tests/integration/otlp_receiver.py" "$src/proto" /dev/null > "$work/otlp.log" 2>&1 &
pids+=($!)
otlp="127.0.0.1:$(wait_port "$work/otlp.log")"
for ratio in 0.01 1; do
  start_fleet "trace-$ratio" --otlp-endpoint "$otlp" --trace-sample-ratio "$ratio"
  trace_coordinator=$coordinator trace_worker_pid=${pids[-1]} trace_coordinator_pid=$coordinator_pid
  coordinator=$plain_coordinator coordinator_pid=$plain_coordinator_pid
  head -n 2000 "$work/urls.txt" | "$bin/fetchctl" --coordinator "$trace_coordinator" submit --no-progress - >/dev/null 2>&1
  run_trace() { timed_job "$work/cmp-trace.jsonl" "$trace_coordinator"; }
  compare "tracing $ratio / off" "tracing $ratio of requests" run_trace
  kill -TERM "$trace_worker_pid" "$trace_coordinator_pid"
  wait "$trace_worker_pid" "$trace_coordinator_pid" 2>/dev/null || true
  echo "worker with tracing $ratio: $(grep -o 'trace export: .*' "$work/worker-trace-$ratio.log" | tail -n1)"
done

# --- curl --parallel over the same URLs
sed 's/^/url = /; a output = "/dev/null"' "$work/urls.txt" > "$work/curl.cfg"
t0=$(now)
curl --parallel --parallel-max 64 -s --no-progress-meter -K "$work/curl.cfg"
t1=$(now)
curl_rps=$(python3 -c "print(f'{$urls / ($t1 - $t0):.0f}')")
echo "curl --parallel --parallel-max 64: $urls in $(python3 -c "print(f'{$t1 - $t0:.2f}')") s = $curl_rps req/s"

# --- wrk on the same nginx
wrk_out=$(wrk -t2 -c64 -d10s "http://127.0.0.1:$port/item.json")
wrk_rps=$(echo "$wrk_out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
echo "wrk -t2 -c64 -d10s: $wrk_rps req/s"

echo
echo "ratio fleet / curl --parallel: $(python3 -c "print(f'{$fleet_rps / $curl_rps:.2f}x')")"
echo "ratio fleet / wrk:             $(python3 -c "print(f'{$fleet_rps / $wrk_rps:.2f}x')")"

# --- the fleet-wide rate limit, against a private redis-server
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize no --logfile "$work/redis.log" &
pids+=($!)
for _ in $(seq 1 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis_url="redis://127.0.0.1:$redis_port"
script_calls() {
  redis-cli -p "$redis_port" info commandstats |
    awk -F'[:=,]' '/^cmdstat_eval(sha)?:/ {n += $3} END {print n + 0}'
}
echo
echo "rate limiter (3 limiters, each on its own loop and Redis connection, demand 10% over the limit):"
for rate in 1000 50000 unlimited; do
  echo "  $("$bin/fetchfleet-limiter-bench" run "$redis_url" "$rate" 3 3 2>/dev/null)"
done
rb=$(redis-benchmark -p "$redis_port" -n 200000 -c 50 -q \
  EVAL "$("$bin/fetchfleet-limiter-bench" script)" 1 'ff:rl:{redis-benchmark}' 1000000 1 1 100000 |
  tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -n1 | cut -d' ' -f1)
echo "  redis-benchmark -c 50 EVAL of the same script: $rb calls/s (the ceiling of a limiter making one round trip per request)"

# The fleet end to end with a limit: coordinator + 3 workers, all on Redis.
"$bin/fetchfleet-coordinator" --listen 127.0.0.1:0 --redis "$redis_url" 2>"$work/coordinator-rl.log" &
pids+=($!)
rl_coordinator="127.0.0.1:$(wait_port "$work/coordinator-rl.log")"
for w in 1 2 3; do
  "$bin/fetchfleet-worker" --coordinator "$rl_coordinator" --name "rl-$w" --allow-cidr 127.0.0.0/8 \
    --redis "$redis_url" 2>"$work/worker-rl-$w.log" &
  pids+=($!)
done
for w in 1 2 3; do
  for _ in $(seq 1 100); do grep -q "worker rl-$w (" "$work/coordinator-rl.log" && break; sleep 0.05; done
done
echo
echo "fleet with a fleet-wide limit (3 workers, Redis; the workers keep 2% headroom):"
for spec in 1000:5000 20000:100000; do
  rate=${spec%%:*}; n=${spec##*:}
  key="bench-$rate"
  seq 1 "$n" | sed "s|^|{\"url\": \"http://127.0.0.1:$port/item.json?i=|; s|\$|\", \"rate_key\": \"$key\"}|" > "$work/rl.jsonl"
  before=$(script_calls)
  t0=$(now)
  "$bin/fetchctl" --coordinator "$rl_coordinator" submit --no-progress --rate "$key=$rate/s" \
    --burst "$key=$((rate / 100))" "$work/rl.jsonl" > "$work/rl.out" 2>"$work/rl.err"
  t1=$(now)
  calls=$(( $(script_calls) - before ))
  got=$(grep -c '"ok": true' "$work/rl.out" || true)
  echo "  limit $rate/s: $got/$n ok in $(python3 -c "print(f'{$t1 - $t0:.2f}')") s = $(python3 -c "print(f'{$n / ($t1 - $t0):.0f}')") req/s; $calls Redis script calls = $(python3 -c "print(f'{$calls / $n:.4f}')") round trips per request"
done

# --- the gateway: Aggregate calls of 3 parts at 500/s on the same 3-worker fleet, against
# the test server's /json/NAME?delay=MS (user 20 ms, product 10 ms, recommendations at
# once), beside the slowest part's own latency; then again while a batch job runs.
"$bin/fetchfleet-testserver" > "$work/testserver.out" 2>&1 &
pids+=($!)
ts_port=$(wait_port "$work/testserver.out")
cat > "$work/aggregate.json" <<DOC
{"parts": [
  {"name": "user", "url": "http://127.0.0.1:$ts_port/json/user?delay=20"},
  {"name": "product", "url": "http://127.0.0.1:$ts_port/json/product?delay=10"},
  {"name": "recommendations", "url": "http://127.0.0.1:$ts_port/json/recs", "required": false, "fallback": []}],
 "deadline_ms": 800}
DOC
for _ in $(seq 1 200); do
  curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$ts_port/json/user?delay=20"
done | sort -n > "$work/direct.txt"
direct=$(awk '{a[NR]=$1*1000} END {printf "p50 %.2f ms, p99 %.2f ms", a[int(NR*0.5)], a[int(NR*0.99)]}' "$work/direct.txt")
echo
echo "gateway (Aggregate of 3 parts, 3 workers on Redis); the slowest part alone (curl, 200 calls): $direct"
"$bin/fetchfleet-aggregate-bench" "$rl_coordinator" "$work/aggregate.json" 100 2 >/dev/null  # warm-up
echo "  alone:              $("$bin/fetchfleet-aggregate-bench" "$rl_coordinator" "$work/aggregate.json" 500 10)"
cat "$work/urls.txt" "$work/urls.txt" "$work/urls.txt" > "$work/batch.txt"  # outlasts the 10 s
"$bin/fetchctl" --coordinator "$rl_coordinator" submit --no-progress "$work/batch.txt" >/dev/null 2>"$work/batch.err" &
batch_pid=$!
sleep 1
echo "  with a CPU-bound batch job (nginx at full speed): $("$bin/fetchfleet-aggregate-bench" "$rl_coordinator" "$work/aggregate.json" 500 10)"
if kill -0 "$batch_pid" 2>/dev/null; then
  echo "    (the batch job of $((3 * urls)) requests was still running at the end)"
  kill "$batch_pid" 2>/dev/null || true
else
  echo "    (the batch job ended before the aggregates did: $(tail -n1 "$work/batch.err"))"
fi
wait "$batch_pid" 2>/dev/null || true
# A batch job of slow requests that holds every worker's credit (3 x 512 in flight), against
# a test server of its own (the parts' server keeps its threads for the parts).
"$bin/fetchfleet-testserver" > "$work/slowserver.out" 2>&1 &
pids+=($!)
slow_port=$(wait_port "$work/slowserver.out")
seq 1 20000 | sed "s|^|http://127.0.0.1:$slow_port/delay/1000?i=|" > "$work/slow.txt"
"$bin/fetchctl" --coordinator "$rl_coordinator" submit --no-progress "$work/slow.txt" >/dev/null 2>"$work/slow.err" &
batch_pid=$!
sleep 2
echo "  with a batch job holding every worker's credit (1,536 requests of 1 s in flight): $("$bin/fetchfleet-aggregate-bench" "$rl_coordinator" "$work/aggregate.json" 500 10)"
kill "$batch_pid" 2>/dev/null || true
wait "$batch_pid" 2>/dev/null || true

# --- coordinator peak RSS through a big job
if [ "$big_urls" -gt 0 ]; then
  # a fresh coordinator, so its peak belongs to this job alone
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  start_fleet big
  t0=$(now)
  seq 1 "$big_urls" | sed "s|^|http://127.0.0.1:$port/item.json?i=|" |
    "$bin/fetchctl" --coordinator "$coordinator" submit --no-progress - 2>"$work/big.err" | wc -l > "$work/big.count"
  t1=$(now)
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$coordinator_pid/status")
  echo
  echo "$big_urls-line job: $(cat "$work/big.count") results in $(python3 -c "print(f'{$t1 - $t0:.1f}')") s; coordinator peak RSS $(python3 -c "print(f'{$hwm / 1024:.0f}')") MB [$(tail -n1 "$work/big.err")]"
fi
