#!/usr/bin/env bash
# Drives 100 connections of load against a real rpcd master while operating
# it (ten HUPs, one changing the worker count; an invalid configuration and a
# HUP; TTIN and TTOU; USR2 with a broken binary, then with a new one; kill -9
# of two workers; TERM last) and reports requests sent, answered, failed,
# retried and reset, and p99 latency at rest and during the reloads.
#
# Usage: scripts/lifecycle-proof.sh [runs]   (RACE=1 adds the race detector)
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3}
migrate=$(cat /proc/sys/net/ipv4/tcp_migrate_req 2>/dev/null || echo "absent")
echo "net.ipv4.tcp_migrate_req = $migrate (0: removed slots hand their queue to their worker)"
go test -c -o /tmp/rpcd-lifecycle.test ${RACE:+-race} ./cmd/rpcd/
cd cmd/rpcd # the test binary runs from its package directory
status=0
for run in $(seq 1 "$runs"); do
  echo "=== run $run of $runs"
  # JSON lines are the server's log; keep the test's own report.
  /tmp/rpcd-lifecycle.test -test.run '^TestLifecycleUnderLoad$' -test.count=1 -test.v 2>&1 \
    | grep -v '^ *{' || status=1
done
rm -f /tmp/rpcd-lifecycle.test
exit $status
