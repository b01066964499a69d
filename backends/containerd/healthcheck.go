package containerd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync/atomic"
	"syscall"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/namespaces"

	"github.com/warren-orchestrator/warren/backends/containerd/health"
	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// labelHealth holds the task's health check (JSON), so that a worker that
// restarts goes on checking the containers it adopts.
const labelHealth = "warren.health"

// healthLabel is the label value of a task's health check; empty when it
// has none.
func healthLabel(hc *types.HealthCheck) (string, error) {
	if hc == nil {
		return "", nil
	}
	b, err := json.Marshal(hc)
	return string(b), err
}

// checkHealth sets rc's health from the container's monitor, starting one
// for a running container with a health check and stopping it once the
// container no longer runs. An unhealthy container says why in rc.Error.
func (r *Runtime) checkHealth(rec containers.Container, rc *orchestrator.RuntimeContainer) {
	raw := rec.Labels[labelHealth]
	if raw == "" {
		return
	}
	if rc.State != types.ContainerRunning {
		r.stopMonitor(rec.ID)
		return
	}
	r.mu.Lock()
	m, ok := r.monitors[rec.ID]
	r.mu.Unlock()
	if !ok {
		var hc types.HealthCheck
		if err := json.Unmarshal([]byte(raw), &hc); err != nil {
			rc.Health, rc.Error = types.HealthUnhealthy, fmt.Sprintf("unhealthy: the container's health check label is damaged: %v", err)
			return
		}
		m = health.Start(&hc, &target{r: r, id: rec.ID}, health.WithStartedAt(rc.StartedAt))
		r.mu.Lock()
		if prev, ok := r.monitors[rec.ID]; ok {
			m.Stop()
			m = prev
		} else {
			r.monitors[rec.ID] = m
		}
		r.mu.Unlock()
	}
	rc.Health = m.Status()
	if rc.Health == types.HealthUnhealthy {
		last := m.Last()
		reason := last.Output
		if last.Err != nil {
			reason = last.Err.Error()
		}
		rc.Error = "unhealthy: " + reason
	}
}

// stopMonitor stops the container's health checks, if it has any.
func (r *Runtime) stopMonitor(id string) {
	r.mu.Lock()
	m, ok := r.monitors[id]
	delete(r.monitors, id)
	r.mu.Unlock()
	if ok {
		m.Stop()
	}
}

// stopMonitors stops every health check whose container is not in keep.
func (r *Runtime) stopMonitors(keep map[string]bool) {
	r.mu.Lock()
	var gone []string
	for id := range r.monitors {
		if !keep[id] {
			gone = append(gone, id)
		}
	}
	r.mu.Unlock()
	for _, id := range gone {
		r.stopMonitor(id)
	}
}

// target is a container as its health check sees it.
type target struct {
	r  *Runtime
	id string
}

var execSeq atomic.Uint64

// Addr is the container's address on the node's container network.
func (t *target) Addr() netip.Addr { return t.r.containerIP(t.id) }

// Exec runs argv in the container, as its user, with its environment, and
// returns its exit code; it is killed when ctx ends.
func (t *target) Exec(ctx context.Context, argv []string) (int, error) {
	ctx = namespaces.WithNamespace(ctx, t.r.cfg.Namespace)
	ctr, err := t.r.client.LoadContainer(ctx, t.id)
	if err != nil {
		return -1, err
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		return -1, err
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return -1, err
	}
	ps := *spec.Process
	ps.Args, ps.Terminal = argv, false
	execID := fmt.Sprintf("health-%d", execSeq.Add(1))
	p, err := task.Exec(ctx, execID, &ps, cio.NullIO)
	if err != nil {
		return -1, err
	}
	// The process goes whatever happens; a fresh context, as ctx may be
	// over by then.
	defer func() {
		dctx, cancel := context.WithTimeout(t.r.ctx, rpcTimeout)
		defer cancel()
		_, _ = p.Delete(dctx, containerd.WithProcessKill)
	}()
	exited, err := p.Wait(ctx)
	if err != nil {
		return -1, err
	}
	if err := p.Start(ctx); err != nil {
		return -1, fmt.Errorf("start %q in the container: %w", argv[0], err)
	}
	select {
	case st := <-exited:
		code, _, err := st.Result()
		return int(code), err
	case <-ctx.Done():
		kctx, cancel := context.WithTimeout(t.r.ctx, rpcTimeout)
		defer cancel()
		_ = p.Kill(kctx, syscall.SIGKILL)
		return -1, ctx.Err()
	}
}
