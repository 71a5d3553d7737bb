#!/bin/sh
# Runs etcd and three rpcd hosts on 127.0.0.2-4 that register in it, then
# drives them through one etcd:// target with rpcctl, and stops everything.
#
#   deploy/scale-out/run.sh [calls]
#
# Needs etcd (apt-get install etcd-server) and Go; builds rpcd and rpcctl
# into a temporary directory, where the logs stay for a look afterwards.
set -eu

calls=${1:-100000}
repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
etcd_addr=127.0.0.1:23790
pids=""

stop() {
	for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in $pids; do wait "$pid" 2>/dev/null || true; done
	echo "logs in $dir"
}
trap stop EXIT INT TERM

command -v etcd >/dev/null || { echo "no etcd: apt-get install etcd-server" >&2; exit 1; }
(cd "$repo" && go build -o "$dir/rpcd" ./cmd/rpcd && go build -o "$dir/rpcctl" ./cmd/rpcctl)

etcd --name=scale-out --data-dir="$dir/etcd" \
	--listen-client-urls="http://$etcd_addr" --advertise-client-urls="http://$etcd_addr" \
	--listen-peer-urls=http://127.0.0.1:23800 --initial-advertise-peer-urls=http://127.0.0.1:23800 \
	--initial-cluster=scale-out=http://127.0.0.1:23800 >"$dir/etcd.log" 2>&1 &
pids="$!"
for _ in $(seq 100); do
	curl -sf "http://$etcd_addr/health" >/dev/null 2>&1 && break
	sleep 0.1
done
kill -0 "$pids" 2>/dev/null || { echo "etcd did not start (is $etcd_addr taken?):" >&2; cat "$dir/etcd.log" >&2; exit 1; }

for ip in 127.0.0.2 127.0.0.3 127.0.0.4; do
	"$dir/rpcd" -listen="$ip:8080" -workers=2 -registry="etcd://$etcd_addr" -log-format=json \
		>"$dir/rpcd-$ip.log" 2>&1 &
	pids="$! $pids"
done
for ip in 127.0.0.2 127.0.0.3 127.0.0.4; do
	for _ in $(seq 100); do
		grep -q '"msg":"registered"' "$dir/rpcd-$ip.log" 2>/dev/null && break
		sleep 0.1
	done
done

echo "registered:"
ETCDCTL_API=3 etcdctl --endpoints="$etcd_addr" get --prefix /rpcd/rpcd/ --print-value-only
"$dir/rpcctl" -addr="etcd://$etcd_addr/rpcd" call ping '"hello"'
"$dir/rpcctl" -addr="etcd://$etcd_addr/rpcd" -n "$calls" -c 32 call ping '"x"'
