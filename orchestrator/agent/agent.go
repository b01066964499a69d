// Package agent is the worker's side of Warren: it turns the tasks assigned
// to its node into Runtime calls (start, stop, remove) and reports what the
// runtime shows back to the managers. Each Step is a function of the
// assignments and the runtime's containers, so a restarted worker adopts
// the containers it finds instead of starting them again.
package agent

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// DefaultStopTimeout is the grace between SIGTERM and SIGKILL when the
// task sets none, as Docker's.
const DefaultStopTimeout = 10 * time.Second

// Assignment is a task given to this node, with the plaintext of the
// secrets it uses, by name.
type Assignment struct {
	Task    *types.Container
	Secrets map[string][]byte
}

// Agent runs one node's tasks. Not safe for concurrent use.
type Agent struct {
	nodeID   string
	rt       orchestrator.Runtime
	reported map[string]fsm.TaskStatus
	// settling is set by Step when a container is on its way to the state
	// its task wants (starting, or stopping).
	settling bool
	// mountsOf remembers the volumes each container's task mounts, so that
	// a container whose task is no longer assigned is still accounted for;
	// mounted is what the containers of the last Step mount, and
	// mountsKnown false while some container's mounts are unknown.
	mountsOf    map[string][]string
	mounted     map[string]bool
	mountsKnown bool
}

// New returns the agent of nodeID on runtime rt.
func New(nodeID string, rt orchestrator.Runtime) *Agent {
	return &Agent{nodeID: nodeID, rt: rt, reported: map[string]fsm.TaskStatus{}, mountsOf: map[string][]string{}}
}

// Step brings the runtime in line with assigned (this node's tasks) and
// returns the task statuses that changed since they were last Sent, in task
// ID order. Runtime calls that fail are reported as the task's error; the
// next Step tries again.
func (a *Agent) Step(assigned []Assignment) ([]fsm.TaskStatus, error) {
	// Until this step has listed what runs after its calls, which
	// volumes are mounted is not known.
	a.mountsKnown = false
	observed, err := a.rt.Containers()
	if err != nil {
		return nil, fmt.Errorf("agent: list containers: %w", err)
	}
	have := map[string]orchestrator.RuntimeContainer{}
	for _, c := range observed {
		have[c.TaskID] = c
	}
	want := map[string]Assignment{}
	var out []fsm.TaskStatus
	for _, as := range sortedAssignments(assigned) {
		t := as.Task
		if t.NodeID != a.nodeID {
			continue
		}
		want[t.ID] = as
		c, exists := have[t.ID]
		switch {
		case t.DesiredState == types.ContainerRunning && !exists:
			if err := a.rt.Start(t, as.Secrets); err != nil && !errors.Is(err, orchestrator.ErrContainerExists) {
				out = a.changed(out, fsm.TaskStatus{TaskID: t.ID, NodeID: a.nodeID, ActualState: types.ContainerFailed,
					Error: "start: " + err.Error()})
			}
		case t.DesiredState != types.ContainerRunning && exists:
			// A stopped container goes once the managers have its final
			// status, so the task's history says how it ended.
			if prev, ok := a.reported[t.ID]; live(c.State) || (ok && sameStatus(prev, statusOf(a.nodeID, c))) {
				a.retire(c, stopTimeout(t))
			}
		}
	}
	// Containers of tasks this node no longer has: deleted, or moved.
	for _, c := range observed {
		if _, ok := want[c.TaskID]; !ok {
			a.retire(c, DefaultStopTimeout)
			delete(a.reported, c.TaskID)
		}
	}
	// Report what the runtime shows now, after this step's calls.
	now, err := a.rt.Containers()
	if err != nil {
		return nil, fmt.Errorf("agent: list containers: %w", err)
	}
	a.settling = false
	for _, c := range now {
		as, ok := want[c.TaskID]
		if !ok {
			a.settling = a.settling || live(c.State) // being retired
			continue
		}
		out = a.changed(out, statusOf(a.nodeID, c))
		wantsRunning := as.Task.DesiredState == types.ContainerRunning
		a.settling = a.settling || c.State == types.ContainerPending || (!wantsRunning && live(c.State))
	}
	for id := range a.reported {
		if _, ok := want[id]; !ok {
			delete(a.reported, id)
		}
	}
	a.noteMounts(now, want)
	slices.SortFunc(out, func(x, y fsm.TaskStatus) int { return strings.Compare(x.TaskID, y.TaskID) })
	return out, nil
}

// Settling says whether, at the last Step, a container was still on its
// way to what its task wants (being started, or being stopped): a worker
// then steps again soon rather than a heartbeat later, to report the end
// of the change promptly.
func (a *Agent) Settling() bool { return a.settling }

// Sent records that the managers accepted statuses: they are not reported
// again until they change.
func (a *Agent) Sent(statuses []fsm.TaskStatus) {
	for _, st := range statuses {
		a.reported[st.TaskID] = st
	}
}

func (a *Agent) changed(out []fsm.TaskStatus, st fsm.TaskStatus) []fsm.TaskStatus {
	if prev, ok := a.reported[st.TaskID]; ok && sameStatus(prev, st) {
		return out
	}
	return append(out, st)
}

// sameStatus compares statuses as the managers send them back: times by
// the instant, since a time that went through JSON has lost its monotonic
// reading and its location (== told a wall-clock runtime's statuses apart
// from themselves, so they were reported again on every beat, and a
// stopped container was never removed).
func sameStatus(x, y fsm.TaskStatus) bool {
	if !x.StartedAt.Equal(y.StartedAt) || !x.FinishedAt.Equal(y.FinishedAt) {
		return false
	}
	x.StartedAt, x.FinishedAt, y.StartedAt, y.FinishedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return x == y
}

// retire stops a container that still runs and removes one that has
// stopped. Errors are left for the next Step: the container is still
// listed, so the work is tried again.
func (a *Agent) retire(c orchestrator.RuntimeContainer, timeout time.Duration) {
	if live(c.State) {
		_ = a.rt.Stop(c.TaskID, timeout)
	} else {
		_ = a.rt.Remove(c.TaskID)
	}
}

func live(s types.ContainerState) bool {
	return s == types.ContainerPending || s == types.ContainerRunning
}

func statusOf(nodeID string, c orchestrator.RuntimeContainer) fsm.TaskStatus {
	return fsm.TaskStatus{
		TaskID: c.TaskID, NodeID: nodeID, ActualState: c.State, ContainerID: c.RuntimeID,
		Health: c.Health, ExitCode: c.ExitCode, Error: c.Error,
		StartedAt: c.StartedAt, FinishedAt: c.FinishedAt,
	}
}

func stopTimeout(t *types.Container) time.Duration {
	if t.StopTimeout > 0 {
		return time.Duration(t.StopTimeout) * time.Second
	}
	return DefaultStopTimeout
}

func sortedAssignments(as []Assignment) []Assignment {
	out := slices.Clone(as)
	slices.SortFunc(out, func(x, y Assignment) int { return strings.Compare(x.Task.ID, y.Task.ID) })
	return out
}
