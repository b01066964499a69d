// Package leader is what the leading manager runs on top of the core: node
// liveness (the dispatcher), reconciliation when the state changed or a
// delayed restart falls due, with one plan in flight at a time, the
// workers' heartbeats and each node's assignments. It decides; its caller
// ticks it, feeds it every applied command, and carries its proposals to
// the log through an orchestrator.Proposer.
package leader

import (
	"math/rand/v2"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/reconciler"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Tick is how often the caller should run Tick while nothing else happens.
const Tick = 100 * time.Millisecond

// Leader is one leadership term's duties. Not safe for concurrent use: the
// manager's loop owns it, and drops it when the lead is lost.
type Leader struct {
	store state.Store
	prop  orchestrator.Proposer
	disp  *dispatcher.Dispatcher
	rand  *rand.Rand

	planned bool      // a reconciler plan is in flight
	dirty   bool      // the state the reconciler reads changed since it ran
	wake    time.Time // when a delayed restart falls due
	// version counts applied commands that change tasks; assigned caches
	// each node's assignments as of a version.
	version  uint64
	assigned map[string]cached
}

type cached struct {
	version uint64
	list    []agent.Assignment
}

// New starts a term's duties at the moment this manager became leader
// (and has applied its term's first entry, so store is up to date).
func New(store state.Store, prop orchestrator.Proposer, cfg dispatcher.Config, since time.Time, r *rand.Rand) *Leader {
	return &Leader{
		store: store, prop: prop, rand: r,
		disp:     dispatcher.New(cfg, since),
		dirty:    true,
		assigned: map[string]cached{},
	}
}

// Applied tells the leader about every command applied to the store.
func (l *Leader) Applied(c fsm.Command) {
	if !affectsTasks(c) {
		return
	}
	l.version++
	if reconcileAfter(c) {
		l.dirty = true
	}
}

// affectsTasks reports whether a command changes tasks or what they are
// placed from (secrets and networks do not, yet; the cluster record never
// does).
func affectsTasks(c fsm.Command) bool {
	switch c.Kind() {
	case fsm.KindDeleteSecret:
		// Forced, it takes the secret out of services: their tasks are
		// outdated.
		d, ok := c.(*fsm.DeleteSecret)
		return ok && d.Force
	case fsm.KindReportVolumes, fsm.KindCreateSecret, fsm.KindUpdateSecret,
		fsm.KindCreateNetwork, fsm.KindUpdateNetwork, fsm.KindDeleteNetwork,
		fsm.KindSetCluster:
		return false
	}
	return true
}

// reconcileAfter reports whether the reconciler could decide anything new
// after c: a task's start (pending, running) changes nothing it looks at,
// unless it runs unhealthy.
func reconcileAfter(c fsm.Command) bool {
	r, ok := c.(*fsm.ReportTasks)
	if !ok {
		return true
	}
	for _, st := range r.Statuses {
		if st.ActualState != types.ContainerPending && st.ActualState != types.ContainerRunning {
			return true
		}
		if st.Health == types.HealthUnhealthy {
			return true // the reconciler fails an unhealthy task
		}
	}
	return false
}

// Tick marks nodes down or back up as their heartbeats say, then, if the
// state changed or a delayed restart is due and no plan is in flight,
// reconciles and proposes the plan.
func (l *Leader) Tick(now time.Time) error {
	nodes, err := l.store.ListNodes()
	if err != nil {
		return err
	}
	for _, st := range l.disp.Check(nodes, now) {
		l.prop.Propose(st, func(error) {})
	}
	if l.planned || !(l.dirty || (!l.wake.IsZero() && !now.Before(l.wake))) {
		return nil
	}
	l.dirty, l.wake = false, time.Time{}
	var snap reconciler.Cluster
	if err := l.store.View(func(r state.Reader) error {
		var err error
		snap, err = reconciler.Snapshot(r)
		return err
	}); err != nil {
		return err
	}
	res := reconciler.Reconcile(snap, now, l.rand)
	l.wake = res.Wake
	if res.Plan != nil {
		l.planned = true
		l.prop.Propose(res.Plan, func(error) {
			// Refused or not, the next tick reconciles on the new state.
			l.planned, l.dirty = false, true
		})
	}
	return nil
}

// Heartbeat records a worker's heartbeat and its task reports. reply runs
// with the node's assignments and the reports now committed: at once if
// there are none, else once they applied (not at all if they did not).
func (l *Leader) Heartbeat(node string, now time.Time, statuses []fsm.TaskStatus, reply func([]agent.Assignment, []fsm.TaskStatus)) {
	l.disp.Heartbeat(node, now)
	answer := func(sent []fsm.TaskStatus) {
		as, err := l.Assignments(node)
		if err == nil {
			reply(as, sent)
		}
	}
	if len(statuses) == 0 {
		answer(nil)
		return
	}
	l.prop.Propose(&fsm.ReportTasks{Statuses: statuses}, func(err error) {
		if err == nil {
			answer(statuses)
		}
	})
}

// Assignments are the tasks of a node, read again only when tasks changed.
// Callers must not change them.
func (l *Leader) Assignments(node string) ([]agent.Assignment, error) {
	if a, ok := l.assigned[node]; ok && a.version == l.version {
		return a.list, nil
	}
	tasks, err := l.store.ListContainersByNode(node)
	if err != nil {
		return nil, err
	}
	as := make([]agent.Assignment, len(tasks))
	for i, t := range tasks {
		as[i] = agent.Assignment{Task: t}
	}
	l.assigned[node] = cached{version: l.version, list: as}
	return as, nil
}
