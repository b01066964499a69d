#!/usr/bin/env bash
# demo-stop.sh: stop the nodes scripts/demo.sh started.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${WARREN_DEMO_DIR:-$PWD/.demo}
for p in "$DIR"/*.pid; do
	[ -e "$p" ] || continue
	kill "$(cat "$p")" 2>/dev/null || true
	rm -f "$p"
done
echo "Stopped the demo cluster; its data stays in $DIR."
