package raftsim

import (
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"

	"github.com/warren-orchestrator/warren/backends/bolt"
	wraft "github.com/warren-orchestrator/warren/backends/raft"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
)

// manager is one real manager: hashicorp/raft over the bolt stores in its
// own data directory. It lives through incarnations: a crash stops raft
// and closes the stores; a restart opens them again from the same files.
type manager struct {
	c    *Cluster
	id   string
	dir  string
	disk *disk

	mu  sync.Mutex
	inc *incarnation // nil while crashed
}

// incarnation is a manager between a start and a crash.
type incarnation struct {
	m *manager
	// dead closes when the crash begins: requests that arrive are not
	// served, and disk writes stop waiting (see disk.sync).
	dead  chan struct{}
	ep    *endpoint
	trans *Transport
	raft  *hraft.Raft
	fsm   *wraft.FSM
	kv    *bolt.KV
	logs  *bolt.RaftStore
}

// raftConfig is how backends/raft.Open configures a production manager,
// with the snapshot cadence the run asks for.
func (c *Cluster) raftConfig(id string) *hraft.Config {
	out := c.cfg.LogOutput
	if out == nil {
		out = io.Discard
	}
	timing := wraft.DefaultTiming
	rc := hraft.DefaultConfig()
	rc.LocalID = hraft.ServerID(id)
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft " + id, Level: hclog.Info, Output: out})
	rc.HeartbeatTimeout = timing.Heartbeat
	rc.ElectionTimeout = timing.Heartbeat
	rc.LeaderLeaseTimeout = timing.LeaderLease
	rc.CommitTimeout = 5 * time.Millisecond
	rc.BatchApplyCh = true
	rc.NoSnapshotRestoreOnStart = true
	if c.cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = c.cfg.SnapshotThreshold
		rc.TrailingLogs = c.cfg.SnapshotThreshold
	}
	if c.cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = c.cfg.SnapshotInterval
	}
	return rc
}

// start opens the manager's stores and starts raft on them. bootstrap
// writes the initial configuration (every manager a voter) first, on a
// new data directory.
func (m *manager) start(bootstrap bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inc != nil {
		return nil
	}
	c := m.c
	if c.cfg.Broken == BrokenForgetfulRestart && !bootstrap {
		if err := forget(m.dir); err != nil {
			return err
		}
	}
	inc := &incarnation{m: m, dead: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			inc.closeStores()
		}
	}()
	var err error
	if inc.kv, err = bolt.OpenKV(m.dir, &bolt.Options{NoSync: true}); err != nil {
		return err
	}
	inc.fsm, err = wraft.NewFSM(inc.kv, func(err error) {
		c.fail("a manager's store never fails", "%s: %v", m.id, err)
	})
	if err != nil {
		return err
	}
	inc.fsm.Observe(func(index uint64, cmd fsm.Command) { c.applied(m.id, index, cmd) })
	if inc.logs, err = bolt.OpenRaftStore(m.dir); err != nil {
		return err
	}
	rc := c.raftConfig(m.id)
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(m.dir, 2, rc.Logger)
	if err != nil {
		return fmt.Errorf("raftsim: snapshots in %s: %w", filepath.Join(m.dir, "snapshots"), err)
	}
	inc.ep = newEndpoint(m.id)
	inc.ep.rpcs = make(chan hraft.RPC, 16)
	inc.ep.api = inc.serve
	inc.trans = newTransport(c.net, inc.ep)
	logs := slowStore{RaftStore: inc.logs, d: m.disk, dead: inc.dead}
	if bootstrap {
		var servers []hraft.Server
		for _, o := range c.managers {
			servers = append(servers, hraft.Server{Suffrage: hraft.Voter, ID: hraft.ServerID(o.id), Address: hraft.ServerAddress(o.id)})
		}
		if err := hraft.BootstrapCluster(rc, logs, logs, snaps, inc.trans, hraft.Configuration{Servers: servers}); err != nil {
			return fmt.Errorf("raftsim: bootstrap %s: %w", m.id, err)
		}
	}
	if inc.raft, err = hraft.NewRaft(rc, inc.fsm, logs, logs, snaps, inc.trans); err != nil {
		return fmt.Errorf("raftsim: start %s: %w", m.id, err)
	}
	// The filter runs on raft's own goroutine as the state changes, so the
	// term read here is the term this manager was elected in; nothing is
	// sent on the (nil) channel.
	inc.raft.RegisterObserver(hraft.NewObserver(nil, false, func(o *hraft.Observation) bool {
		if st, ok := o.Data.(hraft.RaftState); ok && st == hraft.Leader {
			c.elected(m.id, o.Raft.CurrentTerm())
		}
		return false
	}))
	c.net.up(inc.ep)
	m.inc = inc
	ok = true
	return nil
}

// crash stops the manager: it leaves the network (messages in flight to
// and from it are lost), raft shuts down, and the stores close. What raft and the FSM had written
// stays in the files, as after kill -9 (the bolt store's unsynced log
// pages are in the page cache).
//
// It must run on the bubble's driving goroutine: before raft shuts down,
// synctest.Wait lets every goroutine of the bubble come to rest, so that
// raft has taken every Apply and Barrier handed to it and the FSM every
// committed entry. hashicorp/raft answers neither a future still in its
// apply channel nor one in its FSM channel when it shuts down (their
// ShutdownCh is not set), and a goroutine waiting on one for ever would
// deadlock the bubble.
func (m *manager) crash() error {
	m.mu.Lock()
	inc := m.inc
	m.inc = nil
	m.mu.Unlock()
	if inc == nil {
		return nil
	}
	close(inc.dead)
	_ = inc.trans.Close()
	synctest.Wait()
	err := inc.raft.Shutdown().Error()
	if e := inc.closeStores(); err == nil {
		err = e
	}
	return err
}

func (inc *incarnation) closeStores() error {
	var err error
	if inc.logs != nil {
		err = inc.logs.Close()
	}
	if inc.kv != nil {
		if e := inc.kv.Close(); err == nil {
			err = e
		}
	}
	return err
}

// current is the manager's live incarnation, nil while it is down.
func (m *manager) current() *incarnation {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inc
}

// forget deletes raft's log and stable store: the broken variant of a
// manager that loses raft.db on restart (its votes and its log).
func forget(dir string) error {
	return removeIfExists(filepath.Join(dir, bolt.RaftFileName))
}
