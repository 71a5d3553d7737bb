#!/usr/bin/env bash
# Builds rpcd and runs the Python client's tests against it, in both byte
# orders. Exits non-zero on any failure, and when no test ran.
# Usage: clients/python/run-tests.sh [pytest args...]
# Environment: RPCD_BINARY (skip the build and use this binary), PYTHON.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

python=""
for candidate in ${PYTHON:-} python3 /usr/bin/python3; do
	if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import pytest' 2>/dev/null; then
		python="$candidate"
		break
	fi
done
if [[ -z "$python" ]]; then
	echo "run-tests.sh: pytest is not installed for python3." >&2
	echo "  Debian/Ubuntu: apt-get install python3-pytest  (then run this again)" >&2
	echo "  elsewhere:     python3 -m pip install pytest" >&2
	exit 1
fi

if [[ -z "${RPCD_BINARY:-}" ]]; then
	bindir="$(mktemp -d)"
	trap 'rm -rf "$bindir"' EXIT
	(cd "$root" && go build -o "$bindir/rpcd" ./cmd/rpcd)
	export RPCD_BINARY="$bindir/rpcd"
fi

cd "$here"
status=0
"$python" -m pytest -p no:cacheprovider "$@" || status=$?
if [[ $status -eq 5 ]]; then
	echo "run-tests.sh: pytest collected no tests" >&2
fi
exit "$status"
