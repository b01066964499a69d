package daemon

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
)

// DefaultHeartbeat is how often a node reports to the leader: well inside
// the dispatcher's TTL (15 s), so two lost heartbeats are not a failure.
const DefaultHeartbeat = time.Second

// worker is the task-running half of a node: each beat it brings its
// runtime in line with its assignments, reports what changed to the
// leader, and takes the assignments back. A manager that runs no tasks
// still beats, with no agent, so the cluster sees it up.
type worker struct {
	id     *Identity
	roles  roles // nil: the node never changes role
	dir    string
	client *api.Client
	agent  *agent.Agent // nil on a manager that runs no tasks
	every  time.Duration
	log    *slog.Logger

	// vols keeps the directories of the volumes pinned to this node;
	// volsSynced is when it last exchanged with a manager, volsErr the
	// last error it logged (each is logged once).
	vols       *volumes
	volsSynced time.Time
	volsErr    string
}

func newWorker(dir string, id *Identity, client *api.Client, rt orchestrator.Runtime, every time.Duration, log *slog.Logger) *worker {
	w := &worker{id: id, dir: dir, client: client, every: every, log: log,
		vols: newVolumes(dir, volumeMeasureBeats*every, log.With("part", "volumes"))}
	if id.Worker && rt != nil {
		w.agent = agent.New(id.NodeID, rt)
	}
	return w
}

// roles switches the node's manager half on and off when the leader says
// its role changed; each returns the client to use from then on.
type roles interface {
	promote(ctx context.Context, c *api.Client) (*api.Client, error)
	demote(ctx context.Context, c *api.Client) (*api.Client, error)
	tasksRuntime() (orchestrator.Runtime, error)
	renew(ctx context.Context, c *api.Client, now time.Time) error
}

// run beats until ctx ends, or returns the error that stops the node for
// good: it was removed from the cluster.
//
// Each round reports what the last step saw, then steps the agent on the
// assignments the answer carries at once, so a new task starts as soon as
// the worker hears of it. While a container is on its way (starting,
// stopping) the next round comes after FastHeartbeat rather than the full
// interval, so that the change is reported promptly too.
func (w *worker) run(ctx context.Context) error {
	var (
		// assigned is nil until a manager has answered: a restarted worker
		// must not take "no assignments yet" for "run nothing" and stop the
		// containers it is about to adopt.
		assigned []agent.Assignment
		known    bool
		report   []fsm.TaskStatus
	)
	for {
		next, err := w.beat(ctx, report)
		switch {
		case errors.Is(err, api.ErrRemoved):
			return err
		case err != nil && ctx.Err() == nil:
			w.log.Warn("heartbeat failed; retrying", "err", err)
		case err == nil:
			assigned, known = next, true
			// Before the step: a volume's directory is there before a
			// task that mounts it starts.
			w.syncVolumes(ctx, assigned)
		}
		var settling bool
		report, settling = w.step(assigned, known)
		wait := w.every
		if len(report) > 0 || settling {
			wait = min(wait, FastHeartbeat)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// syncVolumes makes and removes the node's volume directories as the
// managers' answer says, once per heartbeat interval (not on the fast
// rounds of a task changing state), and at once when a task assigned to
// run here mounts a volume the last answer did not list: the node then
// makes its directory (and records it as its own) before the runtime
// would. A failure is logged, and the tasks run on: the next round tries
// again.
func (w *worker) syncVolumes(ctx context.Context, assigned []agent.Assignment) {
	if time.Since(w.volsSynced) < w.every && !w.vols.newMounts(w.id.NodeID, assigned) {
		return
	}
	w.volsSynced = time.Now()
	err := w.vols.sync(ctx, w.client, w.id.NodeID, w.volumeInUse)
	switch {
	case err == nil:
		w.volsErr = ""
	case ctx.Err() == nil && err.Error() != w.volsErr:
		w.volsErr = err.Error()
		w.log.Warn("volumes: retrying on the next heartbeat", "err", err)
	}
}

// volumeInUse reports whether a container of this node may mount the named
// volume. A worker whose runtime is not reached yet may have containers.
func (w *worker) volumeInUse(name string) bool {
	if w.agent == nil {
		return w.id.Worker
	}
	return w.agent.UsesVolume(name)
}

// FastHeartbeat is the pause between two rounds while a task changes state.
const FastHeartbeat = 100 * time.Millisecond

// step brings the runtime in line with the assignments (once they are
// known), and returns the task statuses to report and whether a container
// is still changing state.
func (w *worker) step(assigned []agent.Assignment, known bool) ([]fsm.TaskStatus, bool) {
	w.ensureAgent()
	if w.agent == nil || !known {
		return nil, false
	}
	st, err := w.agent.Step(assigned)
	if err != nil {
		w.log.Warn("runtime", "err", err)
	}
	return st, w.agent.Settling()
}

// beat reports statuses to a manager, which answers with the node's
// assignments.
func (w *worker) beat(ctx context.Context, statuses []fsm.TaskStatus) ([]agent.Assignment, error) {
	resp, err := w.client.Heartbeat(ctx, w.id.NodeID, &api.HeartbeatRequest{Statuses: statuses})
	if err != nil {
		return nil, err
	}
	if w.agent != nil {
		w.agent.Sent(resp.Committed)
	}
	w.learnManagers(resp.Managers)
	w.followRole(ctx, resp.Role)
	if w.roles != nil {
		if err := w.roles.renew(ctx, w.client, time.Now()); err != nil {
			w.log.Warn("retrying on the next heartbeat", "err", err)
		}
	}
	return resp.Assignments, nil
}

// followRole promotes or demotes the node when its role in the state
// differs from what it runs; a failure is retried on the next beat.
func (w *worker) followRole(ctx context.Context, role string) {
	if w.roles == nil || role == "" || (role == api.RoleManager) == w.id.Manager {
		return
	}
	change := w.roles.promote
	if role == api.RoleWorker {
		change = w.roles.demote
	}
	c, err := change(ctx, w.client)
	if err != nil {
		w.log.Warn("could not change role; retrying on the next heartbeat", "to", role, "err", err)
		return
	}
	w.client = c
	w.ensureAgent()
}

// ensureAgent gives a node that became a worker (a manager that ran no
// tasks, demoted) its agent; if the runtime cannot be had, the next beat
// tries again.
func (w *worker) ensureAgent() {
	if w.agent != nil || !w.id.Worker || w.roles == nil {
		return
	}
	rt, err := w.roles.tasksRuntime()
	if err != nil {
		w.log.Warn("this node is a worker, but cannot run tasks; retrying on the next heartbeat", "err", err)
		return
	}
	w.agent = agent.New(w.id.NodeID, rt)
}

// learnManagers keeps the client's list, and node.json's, in step with the
// managers the leader reports, so a worker reaches a new manager after the
// ones it joined through are gone, restarts included.
func (w *worker) learnManagers(ms []api.Manager) {
	var addrs []string
	for _, m := range ms {
		if m.APIAddr != "" {
			addrs = append(addrs, m.APIAddr)
		}
	}
	slices.Sort(addrs)
	if len(addrs) == 0 || slices.Equal(addrs, w.id.Managers) {
		return
	}
	w.client.SetManagers(addrs)
	w.id.Managers = addrs
	if err := w.id.save(w.dir); err != nil {
		w.log.Warn("could not record the managers in node.json", "err", err)
	}
}
