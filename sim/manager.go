package sim

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/leader"
	"github.com/warren-orchestrator/warren/orchestrator/reconciler"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// errNotLeader answers a request sent to a manager that does not lead.
var errNotLeader = errors.New("sim: not the leader")

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
	// leader holds the term's duties while this manager leads and has
	// applied its term's no-op.
	leader *leader.Leader
	// deferred are committed entries not yet applied to store (see apply).
	deferred []Entry
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
	m.leader, m.deferred = nil, nil
	m.raft.start()
}

func (m *manager) crash() {
	m.failPending()
	m.leader = nil
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
	if m.raft.role != roleLeader {
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

// apply takes a committed entry. A follower whose entry some manager has
// already applied only queues it: nothing reads a follower's store until it
// leads (or until the checks ask), so its state is brought up to date then,
// by flush, in log order, with the same result. The checks on the entry
// itself run at once either way.
func (m *manager) apply(idx uint64, e Entry) {
	m.c.eng.Mix(idx, e.Term, e.Write, uint64(len(e.Data)))
	if m.raft.role != roleLeader && m.c.isCommitted(idx) {
		m.deferred = append(m.deferred, e)
		m.c.applied(m, idx, e, nil, nil)
		return
	}
	m.flush()
	var err error
	var before map[string]int
	if p, plan := e.cmd.(*fsm.PlanTasks); plan && !m.c.isCommitted(idx) {
		before, _ = meantToRun(m, p) // the first apply of a plan is checked
	}
	if e.cmd != nil {
		err = fsm.Apply(m.store, e.cmd)
		if m.leader != nil {
			m.leader.Applied(e.cmd)
		}
	}
	m.c.applied(m, idx, e, err, before)
	if p, ok := m.pending[idx]; ok {
		delete(m.pending, idx)
		if p.term == e.Term {
			p.done(err)
		} else {
			p.done(errNotLeader)
		}
	}
	if m.leader == nil && m.raft.role == roleLeader && e.Term == m.raft.term && e.Data == nil {
		store := m.store
		if m.c.cfg.Broken == BrokenIgnoreVolumes {
			store = noVolumes{store} // the scheduler no longer knows where volumes are
		}
		m.leader = leader.New(store, proposer{m}, m.c.dispatcherConfig(), m.c.eng.Now(), m.c.eng.Rand)
		m.c.eng.Tracef("%s ready term=%d", m.id, m.raft.term)
		m.leaderTick()
	}
}

func (m *manager) lead() {
	m.flush()
	m.c.led(m.id, m.raft.term)
}

// flush applies the queued entries to the store, in log order.
func (m *manager) flush() {
	for _, e := range m.deferred {
		if e.cmd != nil {
			_ = fsm.Apply(m.store, e.cmd) // its result was checked when it first applied
		}
	}
	m.deferred = m.deferred[:0]
}

func (m *manager) follow() {
	m.failPending()
	m.leader = nil
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

// leaderTick runs the term's duties, then again after leader.Tick.
func (m *manager) leaderTick() {
	if m.leader == nil || m.raft.role != roleLeader {
		return
	}
	term := m.raft.term
	if err := m.leader.Tick(m.c.eng.Now()); err != nil {
		panic(err)
	}
	m.c.eng.After(leader.Tick, m.raft.guard(func() {
		if m.raft.term == term {
			m.leaderTick()
		}
	}))
}

// proposer carries the leader's commands to the Raft model, checking and
// tracing them on the way.
type proposer struct{ m *manager }

func (p proposer) Propose(cmd fsm.Command, done func(error)) {
	m := p.m
	switch cmd := cmd.(type) {
	case *fsm.SetNodeStatus:
		m.c.eng.Tracef("%s marks %s %s", m.id, cmd.NodeID, cmd.Status)
	case *fsm.PlanTasks:
		m.c.checkPlan(m, cmd)
		m.c.eng.Tracef("%s plan %s", m.id, reconciler.Describe(cmd))
		inner := done
		done = func(err error) {
			if err != nil {
				m.c.eng.Tracef("%s plan refused: %v", m.id, err)
			}
			inner(err)
		}
	}
	m.proposeCmd(cmd, done)
}

// noVolumes is a Store that hides the volumes: the broken variant whose
// scheduler ignores volume affinity.
type noVolumes struct{ state.Store }

func (noVolumes) ListVolumes() ([]*types.Volume, error) { return nil, nil }

func (s noVolumes) View(fn func(state.Reader) error) error {
	return s.Store.View(func(r state.Reader) error { return fn(noVolumesReader{r}) })
}

type noVolumesReader struct{ state.Reader }

func (noVolumesReader) ListVolumes() ([]*types.Volume, error) { return nil, nil }

func (m *manager) onHeartbeat(from string, hb heartbeat) {
	if m.leader == nil {
		m.c.net.Send(m.id, from, heartbeatReply{Leader: m.raft.leaderID})
		return
	}
	m.leader.Heartbeat(from, m.c.eng.Now(), hb.Statuses, func(as []agent.Assignment, sent []fsm.TaskStatus) {
		if m.raft.role != roleLeader {
			return
		}
		as, err := m.c.deliver(m, as)
		if err != nil {
			// As production's leader fails the heartbeat request: the
			// worker tries again with its next beat.
			m.c.eng.Tracef("%s cannot answer %s: %v", m.id, from, err)
			m.c.eventOnce(from, "heartbeat answer refused: %v", err)
			m.c.net.Send(m.id, from, heartbeatReply{Leader: m.id})
			return
		}
		m.c.net.Send(m.id, from, heartbeatReply{OK: true, Assignments: as, Sent: sent})
	})
}

func (m *manager) onClientWrite(from string, w clientWrite) {
	if m.leader == nil {
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
