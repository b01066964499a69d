#!/usr/bin/env bash
# demo.sh: start a 3-manager Warren cluster on this machine (loopback,
# ports 8081-8083 for the API and 2381-2383 for raft, data in .demo/),
# deploy a service, kill -9 the leader, show the failover, and bring the
# old leader back. The cluster keeps running afterwards; `make demo-stop`
# stops it. The nodes run with --runtime simulated: this demo is about the
# control plane, and runs on a machine without containerd.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${WARREN_DEMO_DIR:-$PWD/.demo}
BIN=$PWD/bin/warren

stop_all() {
	for p in "$DIR"/*.pid; do
		[ -e "$p" ] || continue
		kill "$(cat "$p")" 2>/dev/null || true
		rm -f "$p"
	done
}

wait_for() { # wait_for FILE TEXT: until the node's log says it serves
	for _ in $(seq 100); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "demo: timed out waiting for '$2' in $1:" >&2
	cat "$1" >&2
	exit 1
}

start() { # start NAME ARGS...: run a node in the background
	local name=$1
	shift
	"$BIN" "$@" >"$DIR/$name.log" 2>&1 &
	echo $! >"$DIR/$name.pid"
	disown
	wait_for "$DIR/$name.log" "is running"
}

stop_all
rm -rf "$DIR"
mkdir -p "$DIR"

echo "== Starting manager m1 (cluster init), then m2 and m3 (manager join)"
start m1 cluster init --data-dir "$DIR/m1" --api-addr 127.0.0.1:8081 --advertise-addr 127.0.0.1:2381 --runtime simulated
W=("$BIN" --data-dir "$DIR/m1" --manager 127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083)
TOKEN=$("${W[@]}" cluster join-token manager -q)
for i in 2 3; do
	start "m$i" manager join --data-dir "$DIR/m$i" --manager 127.0.0.1:8081 --token "$TOKEN" \
		--api-addr "127.0.0.1:808$i" --advertise-addr "127.0.0.1:238$i" --runtime simulated
done
"${W[@]}" cluster info

echo
echo "== Deploying service web (3 replicas)"
"${W[@]}" service create web --image nginx:1.27 --replicas 3 >/dev/null
for _ in $(seq 100); do
	"${W[@]}" service ls | grep -q ' 3/3 ' && break
	sleep 0.1
done
"${W[@]}" service ls
"${W[@]}" service ps web

LEADER=$("${W[@]}" cluster info -o json | sed -n 's/^  "leader": "\(.*\)",$/\1/p')
for i in 1 2 3; do
	grep -q "\"node_id\": \"$LEADER\"" "$DIR/m$i/node.json" && VICTIM=m$i
done
echo
echo "== kill -9 of the leader ($VICTIM, $LEADER), then a write through the others"
kill -9 "$(cat "$DIR/$VICTIM.pid")"
rm -f "$DIR/$VICTIM.pid"
START=$(date +%s%N)
"${W[@]}" service create api --image busybox --replicas 2 >/dev/null
echo "first write acknowledged $(( ($(date +%s%N) - START) / 1000000 )) ms after the kill"
"${W[@]}" cluster info

echo
echo "== Restarting $VICTIM: it rejoins as a follower and catches up"
start "$VICTIM" start --data-dir "$DIR/$VICTIM"
PORT=808${VICTIM#m}
for _ in $(seq 100); do
	"$BIN" --data-dir "$DIR/m1" --manager "127.0.0.1:$PORT" service ls --stale 2>/dev/null | grep -q ' api ' && break
	sleep 0.1
done
"$BIN" --data-dir "$DIR/m1" --manager "127.0.0.1:$PORT" service ls --stale

echo
echo "The cluster is still running (logs in $DIR/*.log). Try:"
echo "  ${W[*]} node ls"
echo "Stop it with: make demo-stop"
