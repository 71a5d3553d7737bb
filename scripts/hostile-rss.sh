#!/usr/bin/env bash
# Starts rpcd on 127.0.0.1 with the given flags, drives hostile clients at it
# with cmd/rpchostile (2,000 half-sent 600 KB frames and 40 clients that
# pipeline and never read, by default) and reports the workers' RSS before,
# at the peak and after.
#
# Usage: scripts/hostile-rss.sh [rpcd flags...]   (HOSTILE="-half 500" passes
# flags to rpchostile)
set -euo pipefail
cd "$(dirname "$0")/.."

dir=$(mktemp -d)
trap 'kill "$(cat "$dir/pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$dir"' EXIT
go build -o "$dir/rpcd" ./cmd/rpcd
go build -o "$dir/rpchostile" ./cmd/rpchostile
port=$((20000 + RANDOM % 20000))
"$dir/rpcd" -listen "127.0.0.1:$port" -pidfile "$dir/pid" -log-level warn "$@" &
for _ in $(seq 100); do
  "$dir/rpcd" -check -listen "127.0.0.1:$port" >/dev/null 2>&1 && break
  sleep 0.1
done
"$dir/rpcd" -check -listen "127.0.0.1:$port" >/dev/null
echo "rpcd $*"
# shellcheck disable=SC2086
"$dir/rpchostile" -port "$port" -pid "$(cat "$dir/pid")" ${HOSTILE:-}
