package containerd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/warren-orchestrator/warren/backends/containerd/cninet"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// ports are the task's ports published on the node.
func ports(task *types.Container) []cninet.Port {
	var out []cninet.Port
	for _, p := range task.Ports {
		if p.HostPort > 0 {
			out = append(out, cninet.Port{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: string(p.Protocol)})
		}
	}
	return out
}

// resolvConfs are where the node's resolver configuration may be, best
// first: systemd-resolved's real servers before its 127.0.0.53 stub.
var resolvConfs = []string{"/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"}

// writeNetworkFiles writes the container's /etc/hosts and /etc/resolv.conf
// into RunDir/ID and returns their read-only bind mounts.
func (r *Runtime) writeNetworkFiles(id, host string, att cninet.Attachment) ([]specs.Mount, error) {
	dir := filepath.Join(r.cfg.RunDir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", att.IP, host)
	resolv, err := resolvConf()
	if err != nil {
		return nil, err
	}
	var mounts []specs.Mount
	for name, content := range map[string]string{"hosts": hosts, "resolv.conf": resolv} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
		mounts = append(mounts, specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: p, Options: []string{"rbind", "ro"}})
	}
	return mounts, nil
}

// resolvConf is the node's resolver configuration as a container can use
// it: loopback name servers (a local stub resolver) are unreachable from
// the container's network namespace, so they are left out. A node with
// none left gives the containers no name server: names then resolve
// through /etc/hosts alone.
func resolvConf() (string, error) {
	var data []byte
	for _, p := range resolvConfs {
		b, err := os.ReadFile(p)
		if err == nil {
			data = b
			break
		}
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if ip, err := netip.ParseAddr(f[1]); err == nil && ip.IsLoopback() {
				continue
			}
		}
		out.WriteString(line + "\n")
	}
	return out.String(), sc.Err()
}

// teardownNetwork detaches the container from the bridge (its IP, its
// published ports' rules, its network namespace) and drops its generated
// files. A failure is left for the next sweep.
func (r *Runtime) teardownNetwork(id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), rpcTimeout)
	defer cancel()
	if err := r.net.Teardown(ctx, id); err != nil {
		r.cfg.Log.Warn("detach a container from the network; retrying at the next look", "container", id, "err", err)
		return
	}
	if err := os.RemoveAll(filepath.Join(r.cfg.RunDir, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.cfg.Log.Warn("remove a container's network files", "container", id, "err", err)
	}
}

// sweepNetwork detaches the containers that stopped (their published ports
// go with the process, as Docker's do) and the leftovers of starts cut
// short or of containers removed while the worker was away.
func (r *Runtime) sweepNetwork(ctx context.Context, listed map[string]bool) {
	ids, err := r.net.Attached()
	if err != nil {
		r.cfg.Log.Warn("list the containers attached to the network", "err", err)
		return
	}
	for _, id := range ids {
		if r.orphan(ctx, id, listed) {
			r.teardownNetwork(id)
		}
	}
}

// orphan says whether what the container with containerd ID id holds on
// the node (its secrets, its network) can go: it is not being started
// (a start mounts and attaches before its container exists), and this
// Containers call listed it as not live, or it is in containerd no more.
func (r *Runtime) orphan(ctx context.Context, id string, listed map[string]bool) bool {
	if r.isStarting(id) {
		return false
	}
	if live, ok := listed[id]; ok {
		return !live
	}
	_, err := r.client.ContainerService().Get(ctx, id)
	return errdefs.IsNotFound(err)
}
