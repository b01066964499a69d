#!/usr/bin/env bash
# up.sh: Warren's main job on this machine. Installs what is missing
# (Debian's containerd, runc, CNI plugins, busybox-static; as root), builds
# bin/warren, starts containerd if none runs, starts a one-node cluster
# (manager and worker: `warren cluster init`, data in .demo/node), loads the
# test image (busybox, built here: there may be no registry), creates the
# secret demo-token, deploys the service `web` (2 replicas of busybox httpd
# serving a page from the local volume web-data, each given the secret) and
# web-public (published on port 8000), and shows `warren
# service ps` and `ctr -n warren containers ls`. The node keeps running;
# `make down` removes the services and stops it.
#
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${WARREN_DEMO_DIR:-$PWD/.demo}
BIN=$PWD/bin/warren
API=127.0.0.1:8080
SOCK=/run/containerd/containerd.sock

if [[ $(id -u) -ne 0 ]]; then
	echo "up: containers need root: run as root (sudo make up)" >&2
	exit 1
fi

echo "== Installing what is missing"
bash ci/install-deps.sh >/dev/null
go build -o "$BIN" ./cmd/warren

mkdir -p "$DIR"
echo "== containerd"
if ctr -a "$SOCK" version >/dev/null 2>&1; then
	echo "containerd answers at $SOCK"
else
	echo "starting containerd (log: $DIR/containerd.log)"
	containerd >"$DIR/containerd.log" 2>&1 &
	echo $! >"$DIR/containerd.pid"
	disown
	for _ in $(seq 100); do
		ctr -a "$SOCK" version >/dev/null 2>&1 && break
		sleep 0.1
	done
	ctr -a "$SOCK" version >/dev/null
fi

W=("$BIN" --data-dir "$DIR/node" --manager "$API")
if [[ -e "$DIR/node.pid" ]] && kill -0 "$(cat "$DIR/node.pid")" 2>/dev/null; then
	echo "== The node runs already (pid $(cat "$DIR/node.pid"))"
else
	if [[ -e "$DIR/node/node.json" ]]; then
		echo "== Starting the node again (warren start; log: $DIR/node.log)"
		"$BIN" start --data-dir "$DIR/node" >"$DIR/node.log" 2>&1 &
	else
		echo "== Creating a one-node cluster (warren cluster init; log: $DIR/node.log)"
		"$BIN" cluster init --data-dir "$DIR/node" --api-addr "$API" >"$DIR/node.log" 2>&1 &
	fi
	echo $! >"$DIR/node.pid"
	disown
	for _ in $(seq 200); do
		grep -q "is running" "$DIR/node.log" 2>/dev/null && break
		if ! kill -0 "$(cat "$DIR/node.pid")" 2>/dev/null; then
			cat "$DIR/node.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	grep "is running" "$DIR/node.log"
fi

echo "== Loading the test image"
go run ./ci/testimage -o "$DIR/busybox.tar"
"$BIN" image load "$DIR/busybox.tar"

echo "== Deploying web (2 replicas) and web-public (port 8000), serving the volume web-data"
mkdir -p "$DIR/node/volumes/web-data"
echo "Hello from Warren: this page lives in the volume web-data." >"$DIR/node/volumes/web-data/index.html"
"${W[@]}" service rm web >/dev/null 2>&1 || true
"${W[@]}" service rm web-public >/dev/null 2>&1 || true
"${W[@]}" secret rm demo-token >/dev/null 2>&1 || true
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' | "${W[@]}" secret create demo-token --from-stdin >/dev/null
"${W[@]}" service create web --image docker.io/warren/busybox:test --replicas 2 \
	--volume web-data:/www:ro --secret demo-token --health-http 80/index.html --health-interval 2s \
	-- sh -c 'echo "the secret demo-token: $(wc -c </run/secrets/demo-token) bytes, $(ls -l /run/secrets/demo-token | cut -c1-10)"; exec httpd -f -p 80 -h /www' >/dev/null
"${W[@]}" service create web-public --image docker.io/warren/busybox:test \
	--volume web-data:/www:ro --publish 8000:80 -- httpd -f -p 80 -h /www >/dev/null 2>&1 ||
	echo "(web-public not created: is port 8000 taken?)"

echo "== Waiting for every replica to run"
for _ in $(seq 300); do
	out=$("${W[@]}" service ls)
	if grep -qE '\sweb\s+replicated\s+2/2\s' <<<"$out"; then break; fi
	sleep 0.2
done
"${W[@]}" service ls
echo
echo "\$ warren service ps web"
"${W[@]}" service ps web
echo
echo "\$ warren secret ls"
"${W[@]}" secret ls
echo
echo "\$ warren volume list   (made on the node of the first task that mounts it)"
"${W[@]}" volume list
echo
echo "\$ warren service logs web   (each task read its secret from /run/secrets, a tmpfs)"
"${W[@]}" service logs web
echo
echo "\$ ctr -n warren containers ls"
ctr -a "$SOCK" -n warren containers ls
echo
echo "\$ curl http://127.0.0.1:8000/   (web-public, published on this node)"
if command -v curl >/dev/null; then
	for _ in $(seq 50); do
		if page=$(curl -fsS http://127.0.0.1:8000/ 2>/dev/null); then
			echo "$page"
			break
		fi
		sleep 0.2
	done
else
	echo "(curl is not installed)"
fi
echo
echo "The node keeps running. Try: ${W[*]} service ps web; make down removes the services and stops it."
