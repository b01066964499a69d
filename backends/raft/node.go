package raft

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"

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
	// Apply bounds how long a write waits to be committed and applied.
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
	// Timing, DefaultTiming when zero.
	Timing Timing
	// LogOutput receives raft's log lines; nil discards them.
	LogOutput io.Writer
	// SnapshotThreshold is how many entries raft appends between
	// snapshots (raft's default when 0).
	SnapshotThreshold uint64
	// ForceNewCluster rewrites the raft configuration, before raft starts,
	// to this manager alone, keeping the state and the log: the way back
	// from a lost quorum (warren cluster init --force-new-cluster).
	ForceNewCluster bool
	// OnApply, when set, sees every command applied without error (see
	// FSM.Observe): the leader's loops and the event stream feed on it.
	OnApply func(index uint64, c fsm.Command)
}

// Node is one manager's replica: raft, its log, the FSM and the store.
type Node struct {
	cfg    Config
	raft   *hraft.Raft
	fsm    *FSM
	kv     *bolt.KV
	logs   *bolt.RaftStore
	trans  *hraft.NetworkTransport
	timing Timing
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
	n := &Node{cfg: cfg, kv: kv, timing: timing}
	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()
	if n.fsm, err = NewFSM(kv, nil); err != nil {
		return nil, err
	}
	n.fsm.Observe(cfg.OnApply)
	if n.logs, err = bolt.OpenRaftStore(cfg.DataDir); err != nil {
		return nil, err
	}
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, logger)
	if err != nil {
		return nil, fmt.Errorf("raft: snapshots in %s: %w", filepath.Join(cfg.DataDir, "snapshots"), err)
	}
	adv, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
	if err != nil {
		return nil, fmt.Errorf("raft: advertise address %q: %w", cfg.Advertise, err)
	}
	stream, err := NewStreamLayer(cfg.Bind, adv, cfg.ServerTLS, cfg.ClientTLS)
	if err != nil {
		return nil, err
	}
	n.trans = hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		// The timeout of one RPC; a snapshot's is scaled by its size.
		Timeout: 2 * time.Second,
		Logger:  logger,
	})

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
	if cfg.ForceNewCluster {
		alone := hraft.Configuration{Servers: []hraft.Server{{
			Suffrage: hraft.Voter, ID: rc.LocalID, Address: n.trans.LocalAddr(),
		}}}
		if err := hraft.RecoverCluster(rc, n.fsm, n.logs, n.logs, snaps, n.trans, alone); err != nil {
			_ = n.trans.Close()
			return nil, fmt.Errorf("raft: force a new cluster from %s: %w", cfg.DataDir, err)
		}
	}
	if n.raft, err = hraft.NewRaft(rc, n.fsm, n.logs, n.logs, snaps, n.trans); err != nil {
		_ = n.trans.Close()
		return nil, fmt.Errorf("raft: start: %w", err)
	}
	ok = true
	return n, nil
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
	f := n.raft.BootstrapCluster(hraft.Configuration{Servers: []hraft.Server{{
		Suffrage: hraft.Voter, ID: hraft.ServerID(n.cfg.ID), Address: n.trans.LocalAddr(),
	}}})
	if err := f.Error(); err != nil {
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
// error is the command's own (a conflict, a name taken) or the reason it
// could not be committed: ErrNotLeader, ErrNoQuorum.
func (n *Node) Apply(cmd fsm.Command) (index uint64, err error) {
	data, err := fsm.Encode(cmd)
	if err != nil {
		return 0, err
	}
	f := n.raft.Apply(data, n.timing.Apply)
	if err := f.Error(); err != nil {
		return 0, n.writeError(err)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return f.Index(), err
	}
	return f.Index(), nil
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
	if err := n.raft.Barrier(n.timing.Apply).Error(); err != nil {
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

// Close stops raft and closes the stores. Safe to call once.
func (n *Node) Close() error {
	err := n.raft.Shutdown().Error()
	if e := n.trans.Close(); err == nil {
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
