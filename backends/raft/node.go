package raft

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"
	"github.com/pingcap/failpoint"

	"github.com/warren-orchestrator/warren/backends/bolt"
	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
)

var (
	// ErrNotLeader is wrapped by the error for a write sent to a manager
	// that does not lead; the error names the leader when one is known.
	ErrNotLeader = errors.New("raft: this manager is not the leader")
	// ErrOutcomeUnknown is wrapped by the error for a write this manager
	// stopped leading while committing: raft cannot tell whether the new
	// leader will keep it.
	ErrOutcomeUnknown = errors.New("raft: leadership lost while committing; the write may or may not be applied")
	// ErrNoQuorum is wrapped by the error for a write that could not be
	// committed in time: too few managers answer.
	ErrNoQuorum = errors.New("raft: no quorum")
)

// Timing is how fast a manager notices a dead leader. The defaults fail
// over in well under a second on a LAN.
type Timing struct {
	// Heartbeat is how long a follower waits for the leader before it
	// stands for election (raft's HeartbeatTimeout and ElectionTimeout;
	// raft randomises each wait between this and twice this).
	Heartbeat time.Duration
	// LeaderLease is how long a leader keeps leading without hearing from
	// a quorum.
	LeaderLease time.Duration
	// Apply bounds how long a write waits to be handed to raft (raft's
	// enqueue timeout; once raft has it, raft answers when it is applied
	// or cannot be), and how long Close lets the calls in flight finish.
	Apply time.Duration
}

// DefaultTiming is the timing for managers on one LAN.
var DefaultTiming = Timing{Heartbeat: 300 * time.Millisecond, LeaderLease: 250 * time.Millisecond, Apply: 5 * time.Second}

// Config says how to start one manager's raft.
type Config struct {
	// ID is the manager's node ID, its raft server ID.
	ID string
	// DataDir holds warren.db, raft.db and snapshots/.
	DataDir string
	// Bind is the host:port raft listens on; Advertise the address the
	// other managers dial (Bind when empty).
	Bind, Advertise string
	// ServerTLS and ClientTLS secure raft traffic (both mutual TLS, from
	// the cluster CA).
	ServerTLS, ClientTLS *tls.Config
	// Transport, when set, carries raft's messages instead of TCP with
	// mutual TLS: nothing listens, and Bind, Advertise, ServerTLS and
	// ClientTLS are not used. Raft closes it when it shuts down. For the
	// simulator's network (sim/raftsim) and tests.
	Transport hraft.Transport
	// WrapLogStore, when set, wraps raft.db's log and stable store before
	// raft sees it: the simulator's disk (latency, stalls) goes there.
	// The failpoints of the log (FailpointBeforeStoreLogs, ...) stay
	// outside the wrapper, around what it returns.
	WrapLogStore func(LogStore) LogStore
	// Timing, DefaultTiming when zero.
	Timing Timing
	// LogOutput receives raft's log lines; nil discards them.
	LogOutput io.Writer
	// SnapshotThreshold is how many entries raft appends between
	// snapshots (raft's default when 0).
	SnapshotThreshold uint64
	// SnapshotInterval is how often raft checks whether SnapshotThreshold
	// is reached (raft's default, two minutes, when 0).
	SnapshotInterval time.Duration
	// ForceNewCluster rewrites the raft configuration, before raft starts,
	// to this manager alone, keeping the state and the log: the way back
	// from a lost quorum (warren cluster init --force-new-cluster).
	ForceNewCluster bool
	// OnApply, when set, sees every command applied without error (see
	// FSM.Observe): the leader's loops and the event stream feed on it.
	OnApply func(index uint64, c fsm.Command)
	// Observe, when set, sees each of raft's observations (state and
	// leader changes, ...) as it happens, on raft's own goroutine: the
	// manager's state and term are the ones the observation is about. It
	// must not block. It is registered as raft starts, before an election
	// timeout can have run out.
	Observe func(*hraft.Observation)
	// Fatal is called, on raft's FSM goroutine, when warren.db cannot
	// record a committed entry: the manager cannot go on without diverging
	// from the others. Nil panics, as a manager must (see NewFSM).
	Fatal func(error)
}

// Node is one manager's replica: raft, its log, the FSM and the store.
type Node struct {
	cfg    Config
	raft   *hraft.Raft
	fsm    *FSM
	kv     *bolt.KV
	logs   *bolt.RaftStore
	trans  hraft.Transport
	timing Timing
	logger hclog.Logger

	// The calls waiting on raft (Apply, Barrier), so that Close can let
	// them finish, and answer those raft never will (see Close).
	mu      sync.Mutex
	closing bool
	calls   sync.WaitGroup
	// down closes once raft has shut down: a call still waiting then
	// will get no answer from raft.
	down      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open starts the manager's raft on its data directory. A new directory
// starts with no cluster: call Bootstrap on exactly one manager, or have
// the leader add this one with AddVoter.
func Open(cfg Config) (*Node, error) {
	if cfg.ID == "" {
		return nil, errors.New("raft: a manager needs an ID")
	}
	if cfg.Advertise == "" {
		cfg.Advertise = cfg.Bind
	}
	timing := cfg.Timing
	if timing == (Timing{}) {
		timing = DefaultTiming
	}
	logOut := cfg.LogOutput
	if logOut == nil {
		logOut = io.Discard
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Info, Output: logOut})

	kv, err := bolt.OpenKV(cfg.DataDir, &bolt.Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, kv: kv, timing: timing, logger: logger, down: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()
	if n.fsm, err = NewFSM(kv, cfg.Fatal); err != nil {
		return nil, err
	}
	n.fsm.id = cfg.ID
	n.fsm.Observe(cfg.OnApply)
	if n.logs, err = bolt.OpenRaftStore(cfg.DataDir); err != nil {
		return nil, err
	}
	var logs LogStore = n.logs
	if cfg.WrapLogStore != nil {
		logs = cfg.WrapLogStore(logs)
	}
	logs = logStore{LogStore: logs, id: cfg.ID}
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, logger)
	if err != nil {
		return nil, fmt.Errorf("raft: snapshots in %s: %w", filepath.Join(cfg.DataDir, "snapshots"), err)
	}
	if n.trans = cfg.Transport; n.trans == nil {
		if n.trans, err = tcpTransport(cfg, logger); err != nil {
			return nil, err
		}
	}

	rc := hraft.DefaultConfig()
	rc.LocalID = hraft.ServerID(cfg.ID)
	rc.Logger = logger
	rc.HeartbeatTimeout = timing.Heartbeat
	rc.ElectionTimeout = timing.Heartbeat
	rc.LeaderLeaseTimeout = timing.LeaderLease
	rc.CommitTimeout = 5 * time.Millisecond
	rc.BatchApplyCh = true
	// warren.db is the FSM's state and survives restarts; restoring the
	// last snapshot over it would only move it back in time.
	rc.NoSnapshotRestoreOnStart = true
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
		rc.TrailingLogs = cfg.SnapshotThreshold
	}
	if cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}
	if cfg.ForceNewCluster {
		alone := hraft.Configuration{Servers: []hraft.Server{{
			Suffrage: hraft.Voter, ID: rc.LocalID, Address: n.trans.LocalAddr(),
		}}}
		if err := hraft.RecoverCluster(rc, n.fsm, logs, logs, snaps, n.trans, alone); err != nil {
			_ = n.closeTransport()
			return nil, fmt.Errorf("raft: force a new cluster from %s: %w", cfg.DataDir, err)
		}
	}
	if n.raft, err = hraft.NewRaft(rc, n.fsm, logs, logs, snaps, n.trans); err != nil {
		_ = n.closeTransport()
		return nil, fmt.Errorf("raft: start: %w", err)
	}
	if cfg.Observe != nil {
		// The filter runs on raft's goroutine as the observation is made;
		// nothing is sent on the (nil) channel.
		n.raft.RegisterObserver(hraft.NewObserver(nil, false, func(o *hraft.Observation) bool {
			cfg.Observe(o)
			return false
		}))
	}
	ok = true
	return n, nil
}

// tcpTransport is raft over TCP with mutual TLS, listening on cfg.Bind.
func tcpTransport(cfg Config, logger hclog.Logger) (*hraft.NetworkTransport, error) {
	adv, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
	if err != nil {
		return nil, fmt.Errorf("raft: advertise address %q: %w", cfg.Advertise, err)
	}
	stream, err := NewStreamLayer(cfg.Bind, adv, cfg.ServerTLS, cfg.ClientTLS)
	if err != nil {
		return nil, err
	}
	return hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		// The timeout of one RPC; a snapshot's is scaled by its size.
		Timeout: 2 * time.Second,
		Logger:  logger,
	}), nil
}

func (n *Node) closeTransport() error {
	if c, ok := n.trans.(hraft.WithClose); ok {
		return c.Close()
	}
	return nil
}

func (n *Node) closeStores() {
	if n.logs != nil {
		_ = n.logs.Close()
	}
	if n.kv != nil {
		_ = n.kv.Close()
	}
}

// Bootstrap makes this manager a cluster of one; it elects itself at once.
// Only for a new cluster (warren cluster init).
func (n *Node) Bootstrap() error {
	return n.BootstrapCluster([]Member{{ID: n.cfg.ID, Addr: n.Addr(), Voter: true}})
}

// BootstrapCluster makes a new cluster of members at once: call it on each
// of them, with the same list, before any has data. Bootstrap, then
// AddVoter, is how a production cluster grows; the simulator starts its
// managers this way.
func (n *Node) BootstrapCluster(members []Member) error {
	var cfg hraft.Configuration
	for _, m := range members {
		s := hraft.Server{Suffrage: hraft.Nonvoter, ID: hraft.ServerID(m.ID), Address: hraft.ServerAddress(m.Addr)}
		if m.Voter {
			s.Suffrage = hraft.Voter
		}
		cfg.Servers = append(cfg.Servers, s)
	}
	if err := n.raft.BootstrapCluster(cfg).Error(); err != nil {
		return fmt.Errorf("raft: bootstrap: %w", err)
	}
	return nil
}

// AddVoter makes the manager id at addr a voting member. Leader only.
func (n *Node) AddVoter(id, addr string) error {
	if err := n.raft.AddVoter(hraft.ServerID(id), hraft.ServerAddress(addr), 0, n.timing.Apply).Error(); err != nil {
		return n.writeError(err)
	}
	return nil
}

// TransferLeadership hands the lead to another voter and waits until it
// has it. Leader only.
func (n *Node) TransferLeadership() error {
	if err := n.raft.LeadershipTransfer().Error(); err != nil {
		return n.writeError(err)
	}
	return nil
}

// RemoveServer removes the manager id from the cluster. Leader only.
func (n *Node) RemoveServer(id string) error {
	if err := n.raft.RemoveServer(hraft.ServerID(id), 0, n.timing.Apply).Error(); err != nil {
		return n.writeError(err)
	}
	return nil
}

// Store is the state as this manager has applied it: reads from it are
// stale by up to the entries in flight. Use Barrier first for a read that
// must see every write acknowledged before it.
func (n *Node) Store() state.Store { return n.fsm.Store() }

// Applied is the index of the last entry this manager applied.
func (n *Node) Applied() uint64 { return n.fsm.Applied() }

// Addr is the address other managers reach this one's raft at.
func (n *Node) Addr() string { return string(n.trans.LocalAddr()) }

// IsLeader reports whether this manager leads.
func (n *Node) IsLeader() bool { return n.raft.State() == hraft.Leader }

// Leader returns the leader's ID and raft address, empty when unknown.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// LeaderCh signals true when this manager becomes leader and false when it
// stops leading.
func (n *Node) LeaderCh() <-chan bool { return n.raft.LeaderCh() }

// Term is the current raft term.
func (n *Node) Term() uint64 { return n.raft.CurrentTerm() }

// Progress is how far a manager's raft log has got.
type Progress struct {
	// Last is the index of the last entry in the log, Committed of the
	// last one known committed, Applied of the last one applied.
	Last, Committed, Applied uint64
}

// Progress reports how far this manager's log has got.
func (n *Node) Progress() Progress {
	return Progress{Last: n.raft.LastIndex(), Committed: n.raft.CommitIndex(), Applied: n.raft.AppliedIndex()}
}

// View runs fn in a read transaction of this manager's warren.db: every
// bucket, the records, indexes and the store's own metadata, as of one
// applied entry. For tools and checks; the core reads through Store.
func (n *Node) View(fn func(tx state.KVTx) error) error { return n.kv.View(fn) }

// Member is a manager in the raft configuration.
type Member struct {
	ID, Addr string
	Voter    bool
}

// Members lists the managers in the current raft configuration.
func (n *Node) Members() ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raft: configuration: %w", err)
	}
	var out []Member
	for _, s := range f.Configuration().Servers {
		out = append(out, Member{ID: string(s.ID), Addr: string(s.Address), Voter: s.Suffrage == hraft.Voter})
	}
	return out, nil
}

// Apply replicates cmd and waits until this manager has applied it. The
// error is the command's own (a conflict, a name taken; index is then
// set) or the reason it could not be committed: ErrNotLeader, ErrNoQuorum,
// ErrOutcomeUnknown, and state.ErrClosed once Close has begun (wrapping
// ErrOutcomeUnknown too when raft shut down with the write in flight).
func (n *Node) Apply(cmd fsm.Command) (index uint64, err error) {
	defer func() { failpoint.InjectCall(FailpointBeforeApplyReturn, n.cfg.ID, index) }()
	data, err := fsm.Encode(cmd)
	if err != nil {
		return 0, err
	}
	if !n.enter() {
		return 0, n.closedError()
	}
	defer n.calls.Done()
	f := n.raft.Apply(data, n.timing.Apply)
	if err := n.await(f); err != nil {
		if errors.Is(err, hraft.ErrRaftShutdown) {
			return 0, fmt.Errorf("%w: %w: raft shut down with the write in flight (%v); read the state to see whether it took", state.ErrClosed, ErrOutcomeUnknown, err)
		}
		return 0, n.writeError(err)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return f.Index(), err
	}
	return f.Index(), nil
}

// enter counts a call that will wait on raft; false once Close has begun.
func (n *Node) enter() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		return false
	}
	n.calls.Add(1)
	return true
}

func (n *Node) closedError() error {
	return fmt.Errorf("%w: raft: manager %s is shutting down; nothing was sent to raft", state.ErrClosed, n.cfg.ID)
}

// await waits for raft's answer to f, or for raft to shut down without
// giving one (hraft.ErrRaftShutdown then). hashicorp/raft never answers a
// future still in its apply queue, nor a committed one still queued for
// the FSM, when it shuts down: waiting on f.Error alone could block for
// ever. The goroutine that waits on it instead is the one left blocked
// then; Close sees that it happens only when raft was stuck for longer
// than Timing.Apply.
func (n *Node) await(f hraft.Future) error {
	answer := make(chan error, 1)
	go func() { answer <- f.Error() }()
	select {
	case err := <-answer:
		return err
	case <-n.down:
		// raft has stopped: an answer it gave is in the future already.
		select {
		case err := <-answer:
			return err
		case <-time.After(time.Millisecond):
			return hraft.ErrRaftShutdown
		}
	}
}

// Propose implements orchestrator.Proposer for the leader's loops.
func (n *Node) Propose(cmd fsm.Command, done func(error)) {
	go func() {
		_, err := n.Apply(cmd)
		done(err)
	}()
}

var _ orchestrator.Proposer = (*Node)(nil)

// Barrier waits until every entry committed before it is applied here.
// Leader only: a linearizable read is a Barrier, then a read of Store.
func (n *Node) Barrier() error {
	if !n.enter() {
		return n.closedError()
	}
	defer n.calls.Done()
	if err := n.await(n.raft.Barrier(n.timing.Apply)); err != nil {
		return n.writeError(err)
	}
	return nil
}

// Backup writes this manager's state, a complete warren.db as of one
// applied entry, to w and returns that entry's index. Applies go on
// meanwhile. Call Barrier first for a backup that holds every write
// acknowledged before it.
func (n *Node) Backup(w io.Writer) (index uint64, err error) {
	s, err := n.kv.Snapshot()
	if err != nil {
		return 0, err
	}
	defer func() { _ = s.Close() }()
	if v := s.Meta(appliedKey); len(v) == 8 {
		index = binary.BigEndian.Uint64(v)
	}
	if _, err := s.WriteTo(w); err != nil {
		return 0, err
	}
	return index, nil
}

// Snapshot takes a raft snapshot now (it compacts the log).
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil && !errors.Is(err, hraft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("raft: snapshot: %w", err)
	}
	return nil
}

func (n *Node) writeError(err error) error {
	switch {
	case errors.Is(err, hraft.ErrLeadershipLost):
		return fmt.Errorf("%w (%v): this manager lost the lead, often because too few managers are reachable; read the state to see whether the write took", ErrOutcomeUnknown, err)
	case errors.Is(err, hraft.ErrNotLeader), errors.Is(err, hraft.ErrLeadershipTransferInProgress):
		if id, addr := n.Leader(); id != "" {
			return fmt.Errorf("%w (%v); the leader is %s at %s", ErrNotLeader, err, id, addr)
		}
		return fmt.Errorf("%w (%v), and no leader is known: an election may be under way, or too few managers are up", ErrNotLeader, err)
	case errors.Is(err, hraft.ErrEnqueueTimeout), errors.Is(err, hraft.ErrAbortedByRestore):
		return fmt.Errorf("%w: the write was not committed within %s (%v): check that a majority of managers is up and reachable", ErrNoQuorum, n.timing.Apply, err)
	case errors.Is(err, hraft.ErrRaftShutdown):
		return fmt.Errorf("%w: %v", state.ErrClosed, err)
	}
	return fmt.Errorf("raft: %w", err)
}

// Close stops raft and closes the stores; a second call waits for the
// first and returns its result. New calls of Apply and Barrier fail at
// once with state.ErrClosed; those in flight get raft's answer if it comes
// within Timing.Apply (raft answers every write it has while it runs:
// applied, refused, or leadership lost), then raft shuts down, and those
// still waiting return state.ErrClosed, a write wrapping
// ErrOutcomeUnknown too. Close returns once every one has returned.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	n.mu.Lock()
	n.closing = true
	n.mu.Unlock()
	returned := make(chan struct{})
	go func() {
		n.calls.Wait()
		close(returned)
	}()
	timer := time.NewTimer(n.timing.Apply)
	select {
	case <-returned:
	case <-timer.C:
		n.logger.Warn("closing with calls still waiting on raft; they will return without raft's answer", "after", n.timing.Apply)
	}
	timer.Stop()
	err := n.raft.Shutdown().Error()
	close(n.down)
	<-returned
	if e := n.closeTransport(); err == nil {
		err = e
	}
	if e := n.logs.Close(); err == nil {
		err = e
	}
	if e := n.kv.Close(); err == nil {
		err = e
	}
	return err
}
