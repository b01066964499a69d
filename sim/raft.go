package sim

import (
	"slices"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
)

// RaftConfig sets the model's timing.
type RaftConfig struct {
	// Heartbeat is how often a leader sends AppendEntries with nothing new.
	Heartbeat time.Duration
	// Election timeouts are drawn uniformly from [ElectionMin, ElectionMax]
	// each time a follower's timer is reset. A leader that has not heard
	// from a majority for ElectionMax steps down.
	ElectionMin, ElectionMax time.Duration
}

// DefaultRaft fails over in a few hundred milliseconds.
var DefaultRaft = RaftConfig{Heartbeat: 50 * time.Millisecond, ElectionMin: 150 * time.Millisecond, ElectionMax: 300 * time.Millisecond}

// Entry is one entry of the replicated log: a fsm command, or nil for the
// no-op a new leader commits to learn what is committed.
type Entry struct {
	Term uint64
	Data []byte
	// Write identifies a client write, for acknowledgement and the
	// lost-write check; 0 for the core's own commands.
	Write uint64
	// cmd is Data decoded, once, by the leader that appended it: the
	// managers share it instead of each decoding the same bytes (Apply
	// does not change a command).
	cmd fsm.Command
}

type role int

const (
	roleFollower role = iota
	roleCandidate
	roleLeader
)

func (r role) String() string { return [...]string{"follower", "candidate", "leader"}[r] }

// Raft messages.
type (
	requestVote struct {
		Term                uint64
		LastIndex, LastTerm uint64
	}
	voteReply struct {
		Term    uint64
		Granted bool
	}
	appendEntries struct {
		Term                uint64
		PrevIndex, PrevTerm uint64
		Entries             []Entry
		Commit              uint64
	}
	appendReply struct {
		Term    uint64
		Success bool
		Match   uint64 // on success, the last index the follower holds; on failure, a hint
	}
)

// raftNode is one manager's consensus state: the model of Raft the
// simulator checks. Term, vote and log are durable: a change reaches the
// disk before the node acts on it, and a crash keeps only what had.
type raftNode struct {
	id    string
	peers []string // every manager, self included, sorted
	eng   *Engine
	net   *Network
	disk  *Disk
	cfg   RaftConfig
	life

	term     uint64
	votedFor string
	log      []Entry // log[0] is a sentinel; indexes start at 1
	durable  uint64  // the leader's own appends are durable up to here

	role      role
	leaderID  string
	commit    uint64
	applied   uint64
	votes     map[string]bool
	next      map[string]uint64
	match     map[string]uint64
	heard     map[string]time.Duration
	deadline  time.Duration
	timerSet  bool // an election timer event is pending
	leadSince time.Duration

	// extraSync is the test-only broken variant with a second fsync on
	// every durable change, as a store that syncs data and metadata apart.
	extraSync bool

	// Hooks into the manager.
	onApply  func(idx uint64, e Entry)
	onLead   func()
	onFollow func()
}

func newRaftNode(id string, peers []string, eng *Engine, net *Network, disk *Disk, cfg RaftConfig) *raftNode {
	r := &raftNode{id: id, peers: peers, eng: eng, net: net, disk: disk, cfg: cfg, log: []Entry{{}}}
	return r
}

func (r *raftNode) lastIndex() uint64 { return uint64(len(r.log) - 1) }
func (r *raftNode) lastTerm() uint64  { return r.log[len(r.log)-1].Term }
func (r *raftNode) quorum() int       { return len(r.peers)/2 + 1 }

// start boots the node (first time or after a crash) as a follower.
func (r *raftNode) start() {
	r.alive = true
	r.timerSet = false
	r.role, r.leaderID = roleFollower, ""
	r.commit, r.applied = 0, 0
	r.resetElection()
}

// crash stops the node; what was not durable is gone.
func (r *raftNode) crash() {
	r.alive = false
	r.epoch++
	if r.role == roleLeader {
		r.log = r.log[:min(uint64(len(r.log)), r.durable+1)]
	}
	r.role = roleFollower
}

// resetElection draws a new election deadline. One timer event per node
// is pending at a time: when it fires before the deadline, it waits again.
func (r *raftNode) resetElection() {
	r.deadline = r.eng.Elapsed() + r.eng.Between(r.cfg.ElectionMin, r.cfg.ElectionMax)
	if !r.timerSet {
		r.timerSet = true
		r.eng.After(r.deadline-r.eng.Elapsed(), r.guard(r.electionTimer))
	}
}

func (r *raftNode) electionTimer() {
	if r.eng.Elapsed() < r.deadline {
		r.eng.After(r.deadline-r.eng.Elapsed(), r.guard(r.electionTimer))
		return
	}
	r.timerSet = false
	if r.role != roleLeader {
		r.campaign()
	}
}

// campaign starts an election: a new term and a vote for itself, durable
// before any request goes out.
func (r *raftNode) campaign() {
	r.term++
	r.votedFor = r.id
	r.role, r.leaderID = roleCandidate, ""
	r.votes = map[string]bool{r.id: true}
	r.eng.Tracef("%s campaign term=%d", r.id, r.term)
	r.resetElection()
	term := r.term
	r.disk.Sync(r.guard(func() {
		if r.term != term || r.role != roleCandidate {
			return
		}
		for _, p := range r.peers {
			if p != r.id {
				r.net.Send(r.id, p, requestVote{Term: term, LastIndex: r.lastIndex(), LastTerm: r.lastTerm()})
			}
		}
		r.maybeWin()
	}))
}

// receive handles a raft message, in arrival order behind the node's disk.
func (r *raftNode) receive(from string, msg any) {
	switch m := msg.(type) {
	case requestVote:
		r.afterDisk(m.Term > r.term, func() { r.onRequestVote(from, m) })
	case voteReply:
		r.onVoteReply(from, m)
	case appendEntries:
		r.afterDisk(m.Term > r.term || len(m.Entries) > 0, func() { r.onAppendEntries(from, m) })
	case appendReply:
		r.onAppendReply(from, m)
	}
}

// afterDisk runs fn once the node's earlier writes are durable, and after
// a write of its own if write.
func (r *raftNode) afterDisk(write bool, fn func()) {
	if write && r.extraSync {
		r.disk.Sync(r.guard(func() { r.disk.Sync(r.guard(fn)) }))
	} else if write {
		r.disk.Sync(r.guard(fn))
	} else {
		r.disk.Then(r.guard(fn))
	}
}

func (r *raftNode) stepDown(term uint64) {
	if term > r.term {
		r.term, r.votedFor = term, ""
	}
	if r.role != roleFollower {
		wasLeader := r.role == roleLeader
		r.role = roleFollower
		r.eng.Tracef("%s steps down term=%d", r.id, r.term)
		if wasLeader && r.onFollow != nil {
			r.onFollow()
		}
	}
}

func (r *raftNode) onRequestVote(from string, m requestVote) {
	if m.Term > r.term {
		r.stepDown(m.Term)
	}
	upToDate := m.LastTerm > r.lastTerm() || (m.LastTerm == r.lastTerm() && m.LastIndex >= r.lastIndex())
	granted := m.Term == r.term && (r.votedFor == "" || r.votedFor == from) && upToDate
	if granted {
		r.votedFor = from
		r.resetElection()
	}
	r.net.Send(r.id, from, voteReply{Term: r.term, Granted: granted})
}

func (r *raftNode) onVoteReply(from string, m voteReply) {
	if !r.alive {
		return
	}
	if m.Term > r.term {
		r.stepDown(m.Term)
		return
	}
	if r.role != roleCandidate || m.Term != r.term || !m.Granted {
		return
	}
	r.votes[from] = true
	r.maybeWin()
}

func (r *raftNode) maybeWin() {
	if r.role != roleCandidate || len(r.votes) < r.quorum() {
		return
	}
	r.role, r.leaderID, r.leadSince = roleLeader, r.id, r.eng.Elapsed()
	r.durable = r.lastIndex()
	r.next, r.match, r.heard = map[string]uint64{}, map[string]uint64{}, map[string]time.Duration{}
	for _, p := range r.peers {
		r.next[p] = r.lastIndex() + 1
		r.heard[p] = r.eng.Elapsed()
	}
	r.eng.Tracef("%s leads term=%d last=%d", r.id, r.term, r.lastIndex())
	if r.onLead != nil {
		r.onLead()
	}
	r.append(Entry{Term: r.term}) // the no-op of the new term
	r.tick()
}

// append adds an entry to the leader's log and replicates it. It returns
// the entry's index.
func (r *raftNode) append(e Entry) uint64 {
	e.Term = r.term
	r.log = append(r.log, e)
	idx := r.lastIndex()
	term := r.term
	r.disk.Sync(r.guard(func() {
		if r.role == roleLeader && r.term == term {
			r.durable = max(r.durable, idx)
			r.advanceCommit()
		}
	}))
	r.broadcast()
	return idx
}

// tick is the leader's heartbeat: replicate, and step down without a
// majority.
func (r *raftNode) tick() {
	if r.role != roleLeader {
		return
	}
	heard := 1
	for _, p := range r.peers {
		if p != r.id && r.eng.Elapsed()-r.heard[p] <= r.cfg.ElectionMax {
			heard++
		}
	}
	if heard < r.quorum() {
		r.eng.Tracef("%s lost quorum term=%d", r.id, r.term)
		r.stepDown(r.term)
		r.resetElection()
		return
	}
	r.broadcast()
	term := r.term
	r.eng.After(r.cfg.Heartbeat, r.guard(func() {
		if r.term == term {
			r.tick()
		}
	}))
}

func (r *raftNode) broadcast() {
	for _, p := range r.peers {
		if p != r.id {
			r.sendAppend(p)
		}
	}
}

func (r *raftNode) sendAppend(p string) {
	prev := min(r.next[p]-1, r.lastIndex())
	r.net.Send(r.id, p, appendEntries{
		Term: r.term, PrevIndex: prev, PrevTerm: r.log[prev].Term,
		Entries: slices.Clone(r.log[prev+1:]), Commit: r.commit,
	})
}

func (r *raftNode) onAppendEntries(from string, m appendEntries) {
	if m.Term < r.term {
		r.net.Send(r.id, from, appendReply{Term: r.term})
		return
	}
	r.stepDown(m.Term)
	r.leaderID = from
	r.resetElection()
	if m.PrevIndex > r.lastIndex() || r.log[m.PrevIndex].Term != m.PrevTerm {
		r.net.Send(r.id, from, appendReply{Term: r.term, Match: min(r.lastIndex(), m.PrevIndex-min(m.PrevIndex, 1))})
		return
	}
	for i, e := range m.Entries {
		idx := m.PrevIndex + 1 + uint64(i)
		if idx <= r.lastIndex() {
			if r.log[idx].Term == e.Term {
				continue
			}
			r.log = r.log[:idx]
		}
		r.log = append(r.log, e)
	}
	last := m.PrevIndex + uint64(len(m.Entries))
	if m.Commit > r.commit {
		r.commit = min(m.Commit, last)
		r.applyCommitted()
	}
	r.net.Send(r.id, from, appendReply{Term: r.term, Success: true, Match: last})
}

func (r *raftNode) onAppendReply(from string, m appendReply) {
	if !r.alive {
		return
	}
	if m.Term > r.term {
		r.stepDown(m.Term)
		r.resetElection()
		return
	}
	if r.role != roleLeader || m.Term != r.term {
		return
	}
	r.heard[from] = r.eng.Elapsed()
	if !m.Success {
		r.next[from] = max(1, min(r.next[from]-1, m.Match+1))
		r.sendAppend(from)
		return
	}
	if m.Match > r.match[from] {
		r.match[from] = m.Match
	}
	r.next[from] = r.match[from] + 1
	r.advanceCommit()
}

// advanceCommit commits the highest index a majority holds, if it is of
// the current term (Raft never counts replicas of an older term's entry).
func (r *raftNode) advanceCommit() {
	held := []uint64{r.durable}
	for _, p := range r.peers {
		if p != r.id {
			held = append(held, r.match[p])
		}
	}
	slices.Sort(held)
	n := held[len(held)-r.quorum()]
	if n > r.commit && r.log[n].Term == r.term {
		r.commit = n
		r.applyCommitted()
	}
}

func (r *raftNode) applyCommitted() {
	for r.applied < r.commit {
		r.applied++
		if r.onApply != nil {
			r.onApply(r.applied, r.log[r.applied])
		}
	}
}
