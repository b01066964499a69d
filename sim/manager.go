package sim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/reconciler"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// errNotLeader answers a request sent to a manager that does not lead.
var errNotLeader = errors.New("sim: not the leader")

// LeaderTick is how often a leader runs its dispatcher and reconciler.
const LeaderTick = 100 * time.Millisecond

// Worker protocol messages.
type (
	heartbeat struct {
		Statuses []fsm.TaskStatus
	}
	heartbeatReply struct {
		Leader      string // set when the receiver does not lead: who it thinks does
		OK          bool
		Assignments []agent.Assignment
		Sent        []fsm.TaskStatus // the statuses now committed
	}
	clientWrite struct {
		ID  uint64
		Cmd []byte
	}
	clientReply struct {
		ID     uint64
		Index  uint64 // where the write committed, when Acked
		Leader string
		Acked  bool
		Err    string
	}
)

// manager is a manager node: Raft, a store with the committed state, and,
// while it leads, the core's dispatcher and reconciler.
type manager struct {
	c     *Cluster
	id    string
	raft  *raftNode
	store state.Store
	// pending are the leader's proposals waiting to apply, by log index.
	pending map[uint64]proposal
	disp    *dispatcher.Dispatcher
	ready   bool // leading, and the term's no-op has applied
	planned bool // a reconciler plan is in flight
	// dirty says the state the reconciler reads changed since it last ran;
	// wake is when a delayed restart falls due.
	dirty bool
	wake  time.Time
	// version counts the applied commands that change tasks; assigned
	// caches each node's assignments as of a version, for heartbeats.
	version  uint64
	assigned map[string]assignments
}

type assignments struct {
	version uint64
	list    []agent.Assignment
}

type proposal struct {
	term uint64
	done func(error)
}

func newManager(c *Cluster, id string, peers []string) *manager {
	m := &manager{c: c, id: id, pending: map[uint64]proposal{}}
	m.raft = newRaftNode(id, peers, c.eng, c.net, newDisk(c.eng, c.cfg.Disk), c.cfg.Raft)
	m.raft.onApply = m.apply
	m.raft.onLead = m.lead
	m.raft.onFollow = m.follow
	m.raft.extraSync = c.cfg.Broken == BrokenExtraFsync
	c.net.attach(id, m.receive)
	return m
}

// boot starts (or restarts) the manager with an empty store: it rebuilds
// its state by applying the committed log again.
func (m *manager) boot() {
	m.store = state.NewMemory()
	m.pending = map[uint64]proposal{}
	m.assigned, m.version = map[string]assignments{}, 0
	m.ready, m.planned, m.disp = false, false, nil
	m.raft.start()
}

func (m *manager) crash() {
	m.failPending()
	m.ready = false
	m.raft.crash()
}

func (m *manager) receive(from string, msg any) {
	if !m.raft.alive {
		return
	}
	switch msg := msg.(type) {
	case heartbeat:
		m.onHeartbeat(from, msg)
	case clientWrite:
		m.onClientWrite(from, msg)
	default:
		m.raft.receive(from, msg)
	}
}

// propose appends cmd to the log; done runs once it applied (with the
// command's result), or failed to. It returns the entry's index.
func (m *manager) propose(data []byte, write uint64, done func(error)) uint64 {
	if m.raft.role != leader {
		done(errNotLeader)
		return 0
	}
	cmd, err := fsm.Decode(data)
	if err != nil {
		done(err)
		return 0
	}
	idx := m.raft.append(Entry{Data: data, Write: write, cmd: cmd})
	if write != 0 && m.c.cfg.Broken == BrokenAckBeforeCommit {
		done(nil) // the broken variant: acknowledged before it commits
		return idx
	}
	m.pending[idx] = proposal{term: m.raft.term, done: done}
	return idx
}

func (m *manager) proposeCmd(c fsm.Command, done func(error)) {
	data, err := fsm.Encode(c)
	if err != nil {
		panic(fmt.Sprintf("sim: encode %s: %v", c.Kind(), err))
	}
	m.propose(data, 0, done)
}

func (m *manager) apply(idx uint64, e Entry) {
	var err error
	var before map[string]int
	if _, plan := e.cmd.(*fsm.PlanTasks); plan && !m.c.isCommitted(idx) {
		before, _ = meantToRun(m) // the first apply of a plan is checked
	}
	if e.cmd != nil {
		err = fsm.Apply(m.store, e.cmd)
		if affectsTasks(e.cmd) {
			m.version++
			if reconcileAfter(e.cmd) {
				m.dirty = true
			}
		}
	}
	m.c.eng.Mix(idx, e.Term, e.Write, uint64(len(e.Data)), boolBit(err == nil))
	m.c.applied(m, idx, e, err, before)
	if p, ok := m.pending[idx]; ok {
		delete(m.pending, idx)
		if p.term == e.Term {
			p.done(err)
		} else {
			p.done(errNotLeader)
		}
	}
	if !m.ready && m.raft.role == leader && e.Term == m.raft.term && e.Data == nil {
		m.ready, m.dirty = true, true
		m.disp = dispatcher.New(m.c.dispatcherConfig(), m.c.eng.Now())
		m.c.eng.Tracef("%s ready term=%d", m.id, m.raft.term)
		m.leaderTick()
	}
}

func (m *manager) lead() { m.c.led(m.id, m.raft.term) }

func (m *manager) follow() {
	m.failPending()
	m.ready, m.planned, m.disp = false, false, nil
}

// failPending answers every waiting proposal, in log order: the answers
// send messages, and messages draw from the random source.
func (m *manager) failPending() {
	for _, idx := range slices.Sorted(maps.Keys(m.pending)) {
		p := m.pending[idx]
		delete(m.pending, idx)
		p.done(errNotLeader)
	}
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// affectsTasks reports whether a command changes what the reconciler
// decides from (secrets and networks do not).
func affectsTasks(c fsm.Command) bool {
	switch c.Kind() {
	case fsm.KindCreateSecret, fsm.KindUpdateSecret, fsm.KindDeleteSecret,
		fsm.KindCreateNetwork, fsm.KindUpdateNetwork, fsm.KindDeleteNetwork:
		return false
	}
	return true
}

// reconcileAfter reports whether the reconciler could decide anything new
// after c: a task's start (pending, running) changes nothing it looks at.
func reconcileAfter(c fsm.Command) bool {
	r, ok := c.(*fsm.ReportTasks)
	if !ok {
		return true
	}
	for _, st := range r.Statuses {
		if st.ActualState != types.ContainerPending && st.ActualState != types.ContainerRunning {
			return true
		}
	}
	return false
}

// leaderTick runs the leader's core: liveness, then reconciliation when
// the state changed or a delayed restart falls due.
func (m *manager) leaderTick() {
	if !m.ready || m.raft.role != leader {
		return
	}
	term := m.raft.term
	nodes, err := m.store.ListNodes()
	if err != nil {
		panic(err)
	}
	now := m.c.eng.Now()
	for _, st := range m.disp.Check(nodes, now) {
		m.c.eng.Tracef("%s marks %s %s", m.id, st.NodeID, st.Status)
		m.proposeCmd(st, func(error) {})
	}
	if !m.planned && (m.dirty || (!m.wake.IsZero() && !now.Before(m.wake))) {
		m.dirty, m.wake = false, time.Time{}
		snap, err := reconciler.Snapshot(m.store)
		if err != nil {
			panic(err)
		}
		if m.c.cfg.Broken == BrokenIgnoreVolumes {
			snap.Volumes = nil // the scheduler no longer knows where volumes are
		}
		res := reconciler.Reconcile(snap, now, m.c.eng.Rand)
		m.wake = res.Wake
		m.c.checkPlan(m, res.Plan)
		if res.Plan != nil {
			m.planned = true
			m.c.eng.Tracef("%s plan %s", m.id, reconciler.Describe(res.Plan))
			m.proposeCmd(res.Plan, func(err error) {
				m.planned = false
				if err != nil {
					m.c.eng.Tracef("%s plan refused: %v", m.id, err)
				}
			})
		}
	}
	m.c.eng.After(LeaderTick, m.raft.guard(func() {
		if m.raft.term == term {
			m.leaderTick()
		}
	}))
}

func (m *manager) onHeartbeat(from string, hb heartbeat) {
	if !m.ready {
		m.c.net.Send(m.id, from, heartbeatReply{Leader: m.raft.leaderID})
		return
	}
	m.disp.Heartbeat(from, m.c.eng.Now())
	reply := func(sent []fsm.TaskStatus) {
		m.c.net.Send(m.id, from, heartbeatReply{OK: true, Assignments: m.assignments(from), Sent: sent})
	}
	if len(hb.Statuses) == 0 {
		reply(nil)
		return
	}
	m.proposeCmd(&fsm.ReportTasks{Statuses: hb.Statuses}, func(err error) {
		if err == nil && m.raft.role == leader {
			reply(hb.Statuses)
		}
	})
}

// assignments are the tasks of a node, read again only when tasks changed.
// Workers only read them.
func (m *manager) assignments(node string) []agent.Assignment {
	if a, ok := m.assigned[node]; ok && a.version == m.version {
		return a.list
	}
	tasks, err := m.store.ListContainersByNode(node)
	if err != nil {
		panic(err)
	}
	as := make([]agent.Assignment, len(tasks))
	for i, t := range tasks {
		as[i] = agent.Assignment{Task: t}
	}
	m.assigned[node] = assignments{version: m.version, list: as}
	return as
}

func (m *manager) onClientWrite(from string, w clientWrite) {
	if !m.ready {
		m.c.net.Send(m.id, from, clientReply{ID: w.ID, Leader: m.raft.leaderID, Err: errNotLeader.Error()})
		return
	}
	var idx uint64
	reply := func(err error) {
		r := clientReply{ID: w.ID, Index: idx, Acked: err == nil || !errors.Is(err, errNotLeader)}
		if err != nil {
			r.Err = err.Error()
		}
		m.c.net.Send(m.id, from, r)
	}
	if m.c.cfg.Broken == BrokenAckBeforeCommit {
		// The index must be known before the early acknowledgement.
		idx = m.raft.lastIndex() + 1
	}
	idx = m.propose(w.Cmd, w.ID, reply)
}
