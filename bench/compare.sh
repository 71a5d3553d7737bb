#!/usr/bin/env bash
# compare.sh runs the same load against rpcd and against goserver (the
# goroutine-per-connection server most Go programs would use) and prints a
# markdown table of the medians.
#
# Each server runs on its own 127.0.0.1 port for the whole comparison. rpcbench
# then drives CONNS connections at each pipeline depth, alternating servers run
# by run (rpcd, goserver, rpcd, goserver, ...) so that machine noise hits both
# alike, and samples each server's CPU time (master and workers) via -pid.
#
# Environment (defaults in brackets):
#   DURATION       measured time per run [10s]
#   WARMUP         unmeasured load before each run [1s]
#   REPEAT         runs per server and depth [3]
#   CONNS          connections [100]
#   DEPTHS         pipeline depths [1 32]
#   SERVERS        servers to compare [rpcd goserver]
#   WORKERS        rpcd worker processes [number of CPUs]
#   RPCD_PORT      [18080]
#   GOSERVER_PORT  [18081]
#   SERVER_CPUS, CLIENT_CPUS   optional taskset CPU lists to keep load
#                  generator and servers on separate cores
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-1s}
REPEAT=${REPEAT:-3}
CONNS=${CONNS:-100}
DEPTHS=${DEPTHS:-1 32}
SERVERS=${SERVERS:-rpcd goserver}
WORKERS=${WORKERS:-$(nproc)}
SERVER_CPUS=${SERVER_CPUS:-}
CLIENT_CPUS=${CLIENT_CPUS:-}
declare -A port=([rpcd]=${RPCD_PORT:-18080} [goserver]=${GOSERVER_PORT:-18081})
declare -A pid=()

work=$(mktemp -d)

log() { echo "compare: $*" >&2; }
die() {
	log "$@"
	exit 1
}

# pinned runs a command on the given CPU list, or unpinned when it is empty.
pinned() {
	local cpus=$1
	shift
	if [[ -n $cpus ]]; then
		exec taskset -c "$cpus" "$@"
	fi
	exec "$@"
}

# stop_server stops one server started here: SIGTERM, a bounded wait, then
# SIGKILL for it and for the worker processes it leaves behind.
stop_server() {
	local name=$1 p=${pid[$1]} children
	children=$(ps -o pid= --ppid "$p" 2>/dev/null || true)
	kill -TERM "$p" 2>/dev/null || return 0
	for _ in $(seq 100); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$p" 2>/dev/null; then
		log "$name did not stop within 10s; killing it"
		kill -KILL "$p" $children 2>/dev/null || true
	fi
	wait "$p" 2>/dev/null || true
}

cleanup() {
	for name in "${!pid[@]}"; do
		stop_server "$name"
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# accepting reports whether something accepts TCP connections on the port.
accepting() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

build() {
	log "building into $work"
	(cd "$root" && go build -o "$work/rpcbench" ./cmd/rpcbench)
	for name in $SERVERS; do
		case $name in
		rpcd) (cd "$root" && go build -o "$work/rpcd" ./cmd/rpcd) ;;
		goserver) (cd "$here" && go build -o "$work/goserver" ./goserver) ;;
		*) die "unknown server $name (want rpcd or goserver)" ;;
		esac
	done
}

# start_server starts one server and waits, bounded, until it accepts connections.
start_server() {
	local name=$1 p=${port[$1]} cmd
	accepting "$p" && die "port $p for $name is already in use"
	case $name in
	rpcd) cmd=("$work/rpcd" -listen "127.0.0.1:$p" -workers "$WORKERS" -log-level warn) ;;
	goserver) cmd=("$work/goserver" -listen "127.0.0.1:$p") ;;
	esac
	pinned "$SERVER_CPUS" "${cmd[@]}" >"$work/$name.log" 2>&1 &
	pid[$name]=$!
	for _ in $(seq 100); do
		if ! kill -0 "${pid[$name]}" 2>/dev/null; then
			cat "$work/$name.log" >&2
			die "$name exited before accepting connections"
		fi
		accepting "$p" && return 0
		sleep 0.1
	done
	die "$name does not accept connections on port $p after 10s"
}

# bench_once runs rpcbench against one server and keeps its JSON report.
bench_once() {
	local name=$1 depth=$2 run=$3 out="$work/$1-$2-$3.json"
	if ! (pinned "$CLIENT_CPUS" "$work/rpcbench" -addr "127.0.0.1:${port[$name]}" \
		-c "$CONNS" -depth "$depth" -d "$DURATION" -warmup "$WARMUP" \
		-pid "${pid[$name]}" -json >"$out"); then
		cat "$out" >&2
		die "rpcbench against $name (depth $depth, run $run) failed; server log: $(tail -n 5 "$work/$name.log")"
	fi
	log "run $run/$REPEAT  $name  depth $depth  $(field rps "$out" | cut -d. -f1) req/s"
}

# field prints a numeric member of a flat rpcbench JSON report.
field() {
	sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" "$2"
}

# median prints the median of the numbers on stdin.
median() {
	sort -g | awk '{ v[NR] = $1 }
		END { if (NR == 0) exit 1; print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# median_of prints the median of one field over the runs of a server at a depth.
median_of() {
	local key=$1 name=$2 depth=$3
	for ((i = 1; i <= REPEAT; i++)); do
		field "$key" "$work/$name-$depth-$i.json"
	done | median
}

table() {
	local setup="$(nproc) CPUs, $(go version | cut -d' ' -f3)"
	[[ " $SERVERS " == *" rpcd "* ]] && setup+=", rpcd with $WORKERS workers"
	echo "Medians of $REPEAT runs of $DURATION (after $WARMUP warmup), $CONNS connections, $setup."
	echo
	echo "| server | depth | req/s | CPU µs/req | p50 µs | p99 µs |"
	echo "|---|--:|--:|--:|--:|--:|"
	for depth in $DEPTHS; do
		for name in $SERVERS; do
			printf '| %s | %s | %.0f | %.2f | %.1f | %.1f |\n' "$name" "$depth" \
				"$(median_of rps "$name" "$depth")" \
				"$(median_of cpu_us_per_req "$name" "$depth")" \
				"$(median_of latency_p50_us "$name" "$depth")" \
				"$(median_of latency_p99_us "$name" "$depth")"
		done
	done
}

main() {
	build
	for name in $SERVERS; do
		start_server "$name"
	done
	for ((run = 1; run <= REPEAT; run++)); do
		for depth in $DEPTHS; do
			for name in $SERVERS; do
				bench_once "$name" "$depth" "$run"
			done
		done
	done
	table
}

main
