#!/usr/bin/env bash
# make test-docker: the tests against a Redis in Docker, then a whole fleet from the images.
#   1. start the Docker daemon unless one answers; make the debian:bookworm-slim base if it is
#      missing; build the images;
#   2. Redis in a container (with a password), and the `redis` and `integration` test labels
#      against it (FETCHFLEET_TEST_REDIS);
#   3. Redis, a coordinator and 2 workers, each a container from the images, started by
#      docker-compose.yml; a job through them with fetchctl (its image too) against a local
#      HTTP target: every request exactly once, and a fleet-wide rate limit held;
#   4. the Helm chart rendered (helm-render) and its Redis, coordinator and worker workloads
#      started as containers exactly as rendered, its `helm test` job run through them;
#   5. clean up containers, the compose project and the daemon it started, even on failure.
# Usage: scripts/test-docker.sh BUILD_DIR (a build of the tests, e.g. build).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
build=${1:-build}
. docker/lib.sh
tag=test
project=fftest$$
work=$(mktemp -d /tmp/ff-test-docker.XXXXXX)
redis_container=ff-test-redis-$$
target_pid=""

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
step() { echo; echo "--- $*"; }

cleanup() {
  local rc=$?
  set +e
  if [ $rc -ne 0 ] && [ -f "$work/compose.env" ]; then
    echo "--- the fleet's logs (failure):"
    env $(cat "$work/compose.env") docker-compose -p "$project" logs --no-color --tail=50 2>&1 | tail -120
  fi
  [ -f "$work/compose.env" ] &&
    env $(cat "$work/compose.env") docker-compose -p "$project" down -v --timeout 10 >/dev/null 2>&1
  "$DOCKER" rm -f "$redis_container" >/dev/null 2>&1
  # What the rendered-chart runs left, if one was interrupted.
  "$DOCKER" ps -aq --filter label=fetchfleet-chart-run=1 | xargs -r "$DOCKER" rm -f >/dev/null 2>&1
  "$DOCKER" network ls -q --filter label=fetchfleet-chart-run=1 | xargs -r "$DOCKER" network rm >/dev/null 2>&1
  [ -n "$target_pid" ] && kill "$target_pid" 2>/dev/null
  docker_down
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

step "Docker"
docker_deps
docker_up
debian_base
build_images_timed "$tag"

step "the redis and integration tests against Redis in a container"
redis_port=$(free_port)
password=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$DOCKER" run -d --rm --name "$redis_container" --network host --read-only \
  --tmpfs /tmp "fetchfleet-redis:$tag" --dir /tmp \
  --bind 127.0.0.1 --port "$redis_port" --requirepass "$password" --save '' --appendonly no \
  >/dev/null
wait_redis() {  # PORT: until Redis answers PING (10 s), else its container's log
  for _ in $(seq 1 100); do
    redis-cli -p "$1" -a "$password" --no-auth-warning ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.1
  done
  echo "error: Redis on port $1 did not answer" >&2
  return 1
}
wait_redis "$redis_port" || { "$DOCKER" logs "$redis_container" >&2; exit 1; }
FETCHFLEET_TEST_REDIS="redis://:$password@127.0.0.1:$redis_port" \
  ctest --test-dir "$build" -L 'redis|integration' --output-on-failure -j 2
"$DOCKER" rm -f "$redis_container" >/dev/null

step "a fleet from the images (docker-compose.yml): Redis, coordinator, 2 workers"
coordinator_port=$(free_port)
cat > "$work/compose.env" <<ENV
FETCHFLEET_TAG=$tag
FETCHFLEET_REDIS_PASSWORD=$password
FETCHFLEET_REDIS_PORT=$(free_port)
FETCHFLEET_COORDINATOR_PORT=$coordinator_port
FETCHFLEET_METRICS_PORT=$(free_port)
FETCHFLEET_WORKER_A_METRICS_PORT=$(free_port)
FETCHFLEET_WORKER_B_METRICS_PORT=$(free_port)
FETCHFLEET_ALLOW_CIDR=127.0.0.0/8
ENV
env $(cat "$work/compose.env") docker-compose -p "$project" up -d
"$build/bin/fetchfleet-testserver" > "$work/target.out" &
target_pid=$!
for _ in $(seq 1 50); do grep -q "listening on" "$work/target.out" && break; sleep 0.1; done
target=$(sed -n 's/^listening on //p' "$work/target.out")
fetchctl() {
  "$DOCKER" run --rm -i --network host "fetchctl:$tag" --coordinator "127.0.0.1:$coordinator_port" "$@"
}
connected=0
for _ in $(seq 1 100); do
  connected=$(fetchctl workers 2>/dev/null | grep -c 'worker-[ab]' || true)
  [ "$connected" = 2 ] && break
  sleep 0.2
done
fetchctl workers
[ "$connected" = 2 ] || { echo "error: $connected of 2 workers connected" >&2; exit 1; }

# 300 requests under a fleet-wide limit of 60/s (burst 1) on a key both workers share, the
# coordinator container killed (SIGKILL) and started again mid-job: fetchctl reconnects by
# itself, each id comes once, and the target saw at least 300 requests (the few in flight at
# the kill are fetched again), the first to the last at least 299 / 60 = 5.0 s apart; each
# worker did some.
n=300
/usr/bin/python3 - "$target" "$n" > "$work/input.jsonl" <<'PY'
import json, sys
target, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    print(json.dumps({"id": f"r{i}", "url": f"http://{target}/ok/{i}", "rate_key": "docker.test"}))
PY
t0=$(date +%s.%N)
fetchctl submit --rate docker.test=60/s --burst docker.test=1 --max-attempts 1 --no-progress - \
  < "$work/input.jsonl" > "$work/results.jsonl" 2> "$work/submit.err" &
submit_pid=$!
sleep 2
env $(cat "$work/compose.env") docker-compose -p "$project" kill -s SIGKILL coordinator
env $(cat "$work/compose.env") docker-compose -p "$project" up -d coordinator
wait $submit_pid || { cat "$work/submit.err" >&2; exit 1; }
t1=$(date +%s.%N)
grep -q "reconnecting" "$work/submit.err" ||
  { echo "error: fetchctl did not see the coordinator restart" >&2; cat "$work/submit.err" >&2; exit 1; }
hits=$(curl -s "http://$target/_hits")
/usr/bin/python3 - "$work/results.jsonl" "$n" "$t0" "$t1" "$hits" <<'PY'
import json, sys
path, n, t0, t1, hits = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
results = [json.loads(line) for line in open(path)]
ids = [r["id"] for r in results]
workers = {r.get("worker") for r in results}
assert len(ids) == n and len(set(ids)) == n, f"{len(ids)} results, {len(set(ids))} distinct ids"
assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:3]
total = json.loads(hits)["total"]
assert n <= total <= n + 10, f"the target saw {total} requests for {n}"
assert workers == {"worker-a", "worker-b"}, f"results came from {sorted(workers)}"
span = (json.loads(hits)["last_ms"] - json.loads(hits)["first_ms"]) / 1000
floor = (n - 1) / 60
assert span >= floor * 0.98, f"{n} requests arrived over {span:.2f} s: faster than 60/s"
print(f"{n} results across a coordinator SIGKILL, each id once, from both workers; the "
      f"target saw {total} requests over "
      f"{span:.2f} s (the limit allows no less than {floor:.2f} s); job {t1 - t0:.2f} s")
PY
env $(cat "$work/compose.env") docker-compose -p "$project" down -v --timeout 10 >/dev/null 2>&1
rm -f "$work/compose.env"

# The chart's own workloads: rendered with helm-render (make chart-check builds it) for the
# default security (generated CA, mTLS workers, an admin token) and for security.mode none,
# then started in containers exactly as rendered, and its helm test job run through them.
render=$build/bin/helm-render
[ -x "$render" ] || helm/render/build.sh "$render"
printf 'security:\n  mode: none\n' > "$work/insecure-values.yaml"
for variant in secure insecure; do
  step "the rendered Helm chart in containers ($variant)"
  extra=()
  [ "$variant" = insecure ] && extra=(-f "$work/insecure-values.yaml")
  "$render" -f helm/run/values.yaml "${extra[@]}" -namespace fetchfleet -release ff \
    helm/fetchfleet > "$work/chart-$variant.yaml"
  /usr/bin/python3 helm/run/run_rendered.py "$work/chart-$variant.yaml"
done

echo
echo "test-docker: passed"
