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
build_images_timed "$tag"
