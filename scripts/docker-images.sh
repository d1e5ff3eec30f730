#!/usr/bin/env bash
# Builds the fetchfleet images (fetchfleet-coordinator, fetchfleet-worker, fetchctl) and the
# local Redis image, tagged TAG (default dev); starts a Docker daemon for the build if none
# answers, and stops it after. Prints each image's size.
set -euo pipefail
cd "$(dirname "$0")/.."
. docker/lib.sh
tag=${1:-dev}
docker_deps
trap docker_down EXIT
docker_up
debian_base
start=$(date +%s)
build_images "$tag"
echo "built in $(( $(date +%s) - start )) s:"
for image in fetchfleet-coordinator fetchfleet-worker fetchctl fetchfleet-redis; do
  echo "  $image:$tag  $(image_size "$image:$tag")"
done
