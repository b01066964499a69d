#!/usr/bin/env bash
# down.sh: undo scripts/up.sh: remove its services (so their containers,
# port rules and secrets go), stop the node, and stop containerd if up.sh
# started it. The data stays in .demo/ (rm -rf it to start afresh).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${WARREN_DEMO_DIR:-$PWD/.demo}
BIN=$PWD/bin/warren
W=("$BIN" --data-dir "$DIR/node" --manager 127.0.0.1:8080)
if [[ -e "$DIR/node.pid" ]] && kill -0 "$(cat "$DIR/node.pid")" 2>/dev/null; then
	"${W[@]}" service rm web web-public >/dev/null 2>&1 || true
	"${W[@]}" secret rm demo-token >/dev/null 2>&1 || true
	for _ in $(seq 100); do
		[[ -z "$(ctr -n warren containers ls -q 2>/dev/null)" ]] && break
		sleep 0.2
	done
	kill "$(cat "$DIR/node.pid")"
	echo "Stopped the node."
fi
rm -f "$DIR/node.pid"
if [[ -e "$DIR/containerd.pid" ]]; then
	kill "$(cat "$DIR/containerd.pid")" 2>/dev/null || true
	rm -f "$DIR/containerd.pid"
	echo "Stopped the containerd up.sh started."
fi
echo "Data stays in $DIR."
