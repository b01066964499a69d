#!/usr/bin/env bash
# Installs everything Warren's builds and tests need on a fresh Debian bookworm
# machine with Go at /usr/local/go. Called by .ci/run and by `make ci`; safe to
# re-run: it installs only what is missing.
set -euo pipefail

export PATH="/usr/local/go/bin:${HOME}/go/bin:${PATH}"
export DEBIAN_FRONTEND=noninteractive

# Debian packages the tests need; each is installed only if dpkg does not
# have it. containerd and runc run the integration specs' containers (each
# spec suite starts a containerd of its own, see backends/containerd/ctdtest);
# busybox-static is the test image's one binary (ci/testimage); iptables
# publishes ports. containernetworking-plugins are the CNI plugins (bridge,
# host-local, portmap, firewall, loopback in /usr/lib/cni) that
# backends/containerd/cninet runs to give containers their own network;
# iproute2's ip deletes the bridges its specs make; docker-registry is the
# registry the specs pull images from (ctdtest.StartRegistry).
APT_PACKAGES=(containerd runc iptables busybox-static docker-registry containernetworking-plugins iproute2)

apt_install() {
	if [[ $(id -u) -ne 0 ]]; then
		echo "install-deps: need root to apt-get install $*; install them and re-run" >&2
		exit 1
	fi
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "$@" </dev/null
}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$pkg")
	fi
done
# make may come from outside apt; only its command matters.
if ! command -v make >/dev/null 2>&1; then
	missing+=(make)
fi
if ((${#missing[@]} > 0)); then
	echo "install-deps: apt-get install ${missing[*]}"
	apt_install "${missing[@]}"
else
	echo "install-deps: no Debian packages missing"
fi

cd "$(dirname "$0")/.."
echo "install-deps: go mod download ($(go version))"
go mod download

# failpoint-toolexec rewrites the failpoint markers of backends/raft at
# compile time for `make chaos`'s bin/warren-failpoints. It goes to bin/tools
# (not system-wide), at the version of the failpoint library in go.mod.
fp_version="$(go list -m -f '{{.Version}}' github.com/pingcap/failpoint)"
if [[ -x bin/tools/failpoint-toolexec && bin/tools/failpoint-toolexec -nt go.mod ]]; then
	echo "install-deps: bin/tools/failpoint-toolexec present"
else
	echo "install-deps: go install failpoint-toolexec@${fp_version} into bin/tools"
	GOBIN="$PWD/bin/tools" go install "github.com/pingcap/failpoint/failpoint-toolexec@${fp_version}"
fi
