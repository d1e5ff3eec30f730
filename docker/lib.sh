# Shell functions for the Docker scripts (sourced): a Docker daemon that is
# started only if none answers, and stopped again by whoever started it; the
# debian:bookworm-slim base built from Debian's archive when no registry can
# give it; the project's images.

DOCKER=${DOCKER:-/usr/bin/docker}   # Debian's client (a newer one on PATH may lack buildx)
FF_DOCKERD_PID=""

# A machine with a Docker of its own (docker-ce, a running daemon) keeps it: packages are
# installed only for commands that are missing.
docker_deps() {
  local missing=""
  command -v dockerd >/dev/null || "$DOCKER" info >/dev/null 2>&1 || missing="docker.io iptables"
  [ -x "$DOCKER" ] || missing="$missing docker.io"
  command -v docker-compose >/dev/null || missing="$missing docker-compose"
  command -v mmdebstrap >/dev/null || missing="$missing mmdebstrap"
  if [ -n "$missing" ]; then
    echo "installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  fi
}

# docker_up starts dockerd (host networking only: no bridge, no iptables rules)
# unless a daemon already answers; docker_down stops it only if we started it.
docker_up() {
  if "$DOCKER" info >/dev/null 2>&1; then return 0; fi
  local dir
  dir=$(mktemp -d /tmp/ff-dockerd.XXXXXX)
  dockerd --storage-driver=overlay2 --iptables=false --bridge=none --ip-forward=false \
    --pidfile "$dir/dockerd.pid" --data-root /var/lib/docker >"$dir/dockerd.log" 2>&1 &
  FF_DOCKERD_PID=$!
  for _ in $(seq 1 120); do
    if "$DOCKER" info >/dev/null 2>&1; then
      echo "dockerd started (pid $FF_DOCKERD_PID, log $dir/dockerd.log)"
      return 0
    fi
    kill -0 "$FF_DOCKERD_PID" 2>/dev/null || break
    sleep 0.5
  done
  echo "error: dockerd did not come up; its log:" >&2
  cat "$dir/dockerd.log" >&2
  return 1
}

docker_down() {
  if [ -n "$FF_DOCKERD_PID" ]; then
    kill "$FF_DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$FF_DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$FF_DOCKERD_PID" 2>/dev/null || true
    FF_DOCKERD_PID=""
  fi
}

# debian_base makes sure debian:bookworm-slim exists: a pull where a registry
# answers, else a minimal Debian 12 from the archive this machine uses
# (mmdebstrap), imported under that name, so the Dockerfile's FROM is the
# ordinary public one either way.
debian_base() {
  if "$DOCKER" image inspect debian:bookworm-slim >/dev/null 2>&1; then return 0; fi
  if timeout 60 "$DOCKER" pull debian:bookworm-slim >/dev/null 2>&1; then return 0; fi
  echo "building debian:bookworm-slim from the Debian archive (mmdebstrap)"
  local main=http://deb.debian.org/debian security=http://deb.debian.org/debian-security
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    main=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    security=$(awk '/^URIs:/ && $2 ~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  (
    set -o pipefail   # else a failed mmdebstrap still imports an empty image
    mmdebstrap --quiet --variant=minbase \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      bookworm - "deb $main bookworm main" "deb $main bookworm-updates main" \
      "deb $security bookworm-security main" |
      "$DOCKER" import -c 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
  )
}

# build_images TAG: the three fetchfleet images and the tests' Redis image.
build_images() {
  local tag=$1 src
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  local revision
  revision=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
  for target in coordinator worker fetchctl; do
    local name=fetchfleet-$target
    [ "$target" = fetchctl ] && name=fetchctl
    DOCKER_BUILDKIT=1 "$DOCKER" build --quiet --network=host --target "$target" \
      --build-arg REVISION="$revision" -t "$name:$tag" "$src" >/dev/null
  done
  DOCKER_BUILDKIT=1 "$DOCKER" build --quiet --network=host -t "fetchfleet-redis:$tag" \
    -f "$src/docker/redis.Dockerfile" "$src/docker" >/dev/null
}

# build_images_timed TAG: build_images, then how long it took and each image's size in MB.
build_images_timed() {
  local tag=$1 start
  start=$(date +%s)
  build_images "$tag"
  echo "images built in $(( $(date +%s) - start )) s:"
  for image in fetchfleet-coordinator fetchfleet-worker fetchctl fetchfleet-redis; do
    "$DOCKER" image inspect -f '{{.Size}}' "$image:$tag" |
      awk -v name="$image:$tag" '{printf "  %s  %.0f MB\n", name, $1 / 1e6}'
  done
}
