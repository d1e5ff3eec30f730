#!/usr/bin/env bash
# Builds helm-render (OUT, default build/bin/helm-render) from Debian's Go packages
# (golang-go, golang-github-masterminds-sprig-dev, golang-gopkg-yaml.v3-dev), offline, in
# GOPATH mode: a private GOPATH gives sprig and semver the /v3 import paths their Debian
# sources are imported by.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:-$here/../../build/bin/helm-render}")
gocode=/usr/share/gocode/src
gopath=$(mktemp -d /tmp/ff-gopath.XXXXXX)
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src/github.com/Masterminds/sprig" "$gopath/src/github.com/Masterminds/semver"
ln -s "$gocode/github.com/Masterminds/sprig" "$gopath/src/github.com/Masterminds/sprig/v3"
ln -s "$gocode/github.com/Masterminds/semver" "$gopath/src/github.com/Masterminds/semver/v3"
mkdir -p "$(dirname "$out")"
cd "$here"
GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS= GOCACHE="${GOCACHE:-$gopath/cache}" \
  go build -o "$out" .
