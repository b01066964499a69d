package daemon

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/warren-orchestrator/warren/backends/clock"
	wctd "github.com/warren-orchestrator/warren/backends/containerd"
	"github.com/warren-orchestrator/warren/backends/containerd/cninet"
	"github.com/warren-orchestrator/warren/backends/fake"
	"github.com/warren-orchestrator/warren/orchestrator"
)

// The runtimes a worker can run its tasks with.
const (
	// RuntimeContainerd runs real containers through containerd, in its
	// namespace "warren".
	RuntimeContainerd = "containerd"
	// RuntimeSimulated runs nothing: in-memory containers that start at
	// once and run until stopped (backends/fake), for trying the control
	// plane on a machine without containerd.
	RuntimeSimulated = "simulated"
)

// Runtimes lists the values of Config.Runtime.
var Runtimes = []string{RuntimeContainerd, RuntimeSimulated}

// Where a containerd worker keeps its volumes and task logs, in its data
// directory.
const (
	VolumesDir = "volumes"
	LogsDir    = "logs"
)

// checkRuntime refuses an unknown runtime name before anything is written.
func checkRuntime(name string) error {
	switch name {
	case "", RuntimeContainerd, RuntimeSimulated:
		return nil
	}
	return fmt.Errorf("daemon: unknown runtime %q: use %s or %s", name, RuntimeContainerd, RuntimeSimulated)
}

// runtime is the worker's runtime, made on first use: the one Config asks
// for, else the one node.json records, else containerd.
func (n *Node) runtime() (orchestrator.Runtime, error) {
	if n.rt != nil || !n.id.Worker {
		return n.rt, nil
	}
	kind := n.cfg.Runtime
	if kind == "" {
		kind = n.id.Runtime
	}
	addr := n.cfg.Containerd
	if addr == "" {
		addr = n.id.Containerd
	}
	switch kind {
	case RuntimeSimulated:
		n.cfg.Log.Warn("runtime: simulated; tasks run in memory, no container is started")
		n.rt = fake.NewRuntime(clock.Wall{}, fake.Knobs{})
		return n.rt, nil
	case "", RuntimeContainerd:
		rt, err := wctd.New(wctd.Config{
			Address: addr, NodeID: n.id.NodeID,
			Network:    cninet.Config{Bridge: cmp.Or(n.cfg.Bridge, n.id.Bridge), Subnet: cmp.Or(n.cfg.Subnet, n.id.Subnet)},
			VolumesDir: filepath.Join(n.dir, VolumesDir), LogsDir: filepath.Join(n.dir, LogsDir),
			Clock: clock.Wall{}, Log: n.cfg.Log.With("part", "containerd"),
		})
		if err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if ok, err := rt.Client().IsServing(ctx); !ok {
			_ = rt.Close()
			if addr == "" {
				addr = wctd.DefaultAddress
			}
			return nil, fmt.Errorf("daemon: containerd does not answer at %s (%v): start it (systemctl start containerd), point --containerd at its socket, or run no real containers with --runtime %s",
				addr, err, RuntimeSimulated)
		}
		n.rt = rt
		return n.rt, nil
	}
	return nil, checkRuntime(kind)
}

// closeRuntime disconnects from the runtime; containers keep running.
func (n *Node) closeRuntime() {
	if c, ok := n.rt.(io.Closer); ok {
		if err := c.Close(); err != nil {
			n.cfg.Log.Warn("close the runtime", "err", err)
		}
	}
}
