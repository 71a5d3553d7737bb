#!/bin/sh
# Builds the rpcd image without pulling anything: a static binary built here,
# copied into a scratch image by deploy/Dockerfile.
#
#   deploy/build.sh [TAG]        # TAG defaults to rpcd:latest
#
# VERSION sets the version the binary reports (default: git describe).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-rpcd:latest}
version=${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cd "$root"
CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X github.com/rpcd/rpcd/cmd.Version=$version" \
	-o "$context/rpcd" ./cmd/rpcd
cp deploy/Dockerfile "$context/Dockerfile"
docker build --quiet --tag "$tag" "$context" >/dev/null
echo "built $tag (rpcd $version)"
