package containerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	taskapi "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/containers"
	"golang.org/x/sys/unix"

	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Containers reports every container of Warren's on the node, ordered by
// task ID. On the way it finishes what an earlier runtime left undone: a
// SIGKILL whose stop timeout has passed, the secrets of a task that has
// stopped, the logs past their retention.
func (r *Runtime) Containers() ([]orchestrator.RuntimeContainer, error) {
	ctx, cancel := context.WithTimeout(r.ctx, rpcTimeout)
	defer cancel()
	// The starts in flight before the listings: one that ends while they
	// are made may show in them half made (a container without a task, a
	// task created but not started). It is reported pending, as it was
	// when the look began; the next look sees how it ended.
	r.mu.Lock()
	before := map[string]string{}
	for taskID, s := range r.starting {
		before[taskID] = s.id
	}
	r.mu.Unlock()
	// Ours first, then the tasks: a container made in between has no task
	// in the answer, and is taken for one still starting (it is in
	// r.starting) rather than for one whose task is gone.
	records, err := r.client.ContainerService().List(ctx, fmt.Sprintf("labels.%q,labels.%q==%s", LabelTask, LabelNode, r.cfg.NodeID))
	if err != nil {
		return nil, fmt.Errorf("containerd runtime: list containers: %w", err)
	}
	resp, err := r.client.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("containerd runtime: list tasks: %w", err)
	}
	procs := map[string]*taskapi.Process{}
	for _, p := range resp.Tasks {
		procs[p.ID] = p
	}
	now := r.cfg.Clock.Now()

	r.mu.Lock()
	out := make([]orchestrator.RuntimeContainer, 0, len(records)+len(r.starting)+len(r.ended))
	seen := map[string]bool{}
	// live says, of each container listed, whether its secrets stay.
	live := map[string]bool{}
	for taskID, s := range r.starting {
		out = append(out, orchestrator.RuntimeContainer{TaskID: taskID, RuntimeID: s.id,
			State: types.ContainerPending, Health: types.HealthUnknown})
		seen[taskID] = true
		live[s.id] = true
	}
	for taskID, rc := range r.ended {
		out = append(out, rc)
		seen[taskID] = true
	}
	r.mu.Unlock()
	for taskID, id := range before {
		if !seen[taskID] {
			out = append(out, orchestrator.RuntimeContainer{TaskID: taskID, RuntimeID: id,
				State: types.ContainerPending, Health: types.HealthUnknown})
			seen[taskID] = true
			live[id] = true
		}
	}

	var kill []string
	for _, rec := range records {
		taskID := rec.Labels[LabelTask]
		if seen[taskID] {
			continue
		}
		rc, due := r.observe(rec, procs[rec.ID], now)
		live[rec.ID] = rc.State == types.ContainerRunning || rc.State == types.ContainerPending
		r.checkHealth(rec, &rc)
		if due {
			kill = append(kill, rec.ID)
		}
		out = append(out, rc)
	}
	slices.SortFunc(out, func(a, b orchestrator.RuntimeContainer) int { return strings.Compare(a.TaskID, b.TaskID) })

	for _, id := range kill {
		r.killOverdue(ctx, id)
	}
	r.stopMonitors(live)
	r.sweepSecrets(ctx, live)
	r.sweepNetwork(ctx, live)
	r.sweepLogs(records, now)
	return out, nil
}

// observe is one container as containerd shows it; due says that its stop
// timeout has passed and it still runs.
func (r *Runtime) observe(rec containers.Container, p *taskapi.Process, now time.Time) (orchestrator.RuntimeContainer, bool) {
	rc := orchestrator.RuntimeContainer{TaskID: rec.Labels[LabelTask], RuntimeID: rec.ID, Health: types.HealthUnknown}
	if t, err := time.Parse(time.RFC3339Nano, rec.Labels[labelStarted]); err == nil {
		rc.StartedAt = t
	}
	stopAt, stopped := time.Time{}, rec.Labels[labelStop] != ""
	if stopped {
		stopAt, _ = time.Parse(time.RFC3339Nano, rec.Labels[labelStop])
	}
	if p == nil {
		// The task is gone but the container is not: containerd lost its
		// state (a reboot), or a start was cut short.
		rc.State, rc.FinishedAt = types.ContainerFailed, rec.UpdatedAt
		rc.Error = "the container has no process: the node or containerd restarted under it"
		if stopped {
			rc.State, rc.Error = types.ContainerShutdown, ""
		}
		return rc, false
	}
	switch p.Status {
	case taskapi.Status_RUNNING, taskapi.Status_PAUSED, taskapi.Status_PAUSING:
		rc.State = types.ContainerRunning
		return rc, stopped && !now.Before(stopAt)
	case taskapi.Status_CREATED:
		// Not in r.starting: made by a runtime that stopped before
		// starting it.
		rc.State, rc.FinishedAt = types.ContainerFailed, rec.UpdatedAt
		rc.Error = "the container was created but never started: the worker restarted while starting it"
		if stopped {
			rc.State, rc.Error = types.ContainerShutdown, ""
		}
		return rc, false
	}
	rc.ExitCode = int(p.ExitStatus)
	if p.ExitedAt != nil {
		rc.FinishedAt = p.ExitedAt.AsTime()
	}
	switch {
	case stopped:
		rc.State = types.ContainerShutdown
	case rc.ExitCode == 0:
		rc.State = types.ContainerComplete
	default:
		rc.State = types.ContainerFailed
		rc.Error = exitError(rc.ExitCode)
	}
	return rc, false
}

// exitError says how a process that exited on its own ended.
func exitError(code int) string {
	if code > 128 && code <= 128+64 {
		sig := syscall.Signal(code - 128)
		if sig == syscall.SIGKILL {
			return fmt.Sprintf("exit code %d: killed by SIGKILL (out of memory, if the task has a memory limit)", code)
		}
		return fmt.Sprintf("exit code %d: killed by %s", code, unix.SignalName(sig))
	}
	return fmt.Sprintf("exit code %d", code)
}

// killOverdue sends SIGKILL to a container whose stop timeout has passed:
// the timer of the Stop that asked is gone (the worker restarted).
func (r *Runtime) killOverdue(ctx context.Context, id string) {
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return
	}
	t, err := ctr.Task(ctx, nil)
	if err != nil {
		return
	}
	r.cfg.Log.Info("stop timeout passed: SIGKILL", "container", id)
	if err := r.kill(t, syscall.SIGKILL); err != nil {
		r.cfg.Log.Warn("SIGKILL past the stop timeout", "container", id, "err", err)
	}
}

// sweepLogs deletes the logs of containers that no longer exist once they
// are older than the retention.
func (r *Runtime) sweepLogs(records []containers.Container, now time.Time) {
	entries, err := os.ReadDir(r.cfg.LogsDir)
	if err != nil {
		return
	}
	exists := map[string]bool{}
	for _, rec := range records {
		exists[rec.ID+".log"] = true
	}
	for _, e := range entries {
		if exists[e.Name()] || !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		info, err := e.Info()
		if err == nil && now.Sub(info.ModTime()) > r.cfg.LogRetention {
			_ = os.Remove(filepath.Join(r.cfg.LogsDir, e.Name()))
		}
	}
}
