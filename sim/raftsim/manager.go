package raftsim

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"sync"

	hraft "github.com/hashicorp/raft"

	"github.com/warren-orchestrator/warren/backends/bolt"
	wraft "github.com/warren-orchestrator/warren/backends/raft"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
)

// manager is one real manager: a backends/raft.Node, as production opens
// it, on the simulated network and disk, in its own data directory. It
// lives through incarnations: a crash closes the Node; a restart opens
// one again on the same files.
type manager struct {
	c    *Cluster
	id   string
	dir  string
	disk *disk

	// starting serialises starts: the run's goroutine restarts managers,
	// and so do the restarts a failpoint's crash schedules.
	starting sync.Mutex

	mu  sync.Mutex
	inc *incarnation // nil while crashed
	// last is the latest incarnation, whose Close may still be running
	// after a crash: the next one waits for it (the files are locked).
	last *incarnation
}

// incarnation is a manager between a start and a crash.
type incarnation struct {
	m *manager
	// dead closes when the crash begins: requests that arrive are not
	// served, and disk writes stop waiting (see disk.sync).
	dead  chan struct{}
	ep    *endpoint
	trans *Transport
	node  *wraft.Node
	// closed closes once the Node's Close has returned closeErr.
	closed   chan struct{}
	closeErr error
}

// nodeConfig is the Config production's managers get (backends/raft's
// defaults, DefaultTiming), with the simulated network and disk plugged
// in, the run's snapshot cadence, and the checks' hooks.
func (m *manager) nodeConfig(inc *incarnation) wraft.Config {
	c := m.c
	cfg := wraft.Config{
		ID:                m.id,
		DataDir:           m.dir,
		Transport:         inc.trans,
		SnapshotThreshold: c.cfg.SnapshotThreshold,
		SnapshotInterval:  c.cfg.SnapshotInterval,
		WrapLogStore: func(s wraft.LogStore) wraft.LogStore {
			return slowStore{LogStore: s, d: m.disk, dead: inc.dead}
		},
		OnApply: func(index uint64, cmd fsm.Command) { c.applied(m.id, index, cmd) },
		// The observation is made on raft's goroutine as the state
		// changes, so the term read here is the one it was elected in.
		Observe: func(o *hraft.Observation) {
			if st, ok := o.Data.(hraft.RaftState); ok && st == hraft.Leader {
				c.elected(m.id, o.Raft.CurrentTerm())
			}
		},
		Fatal: func(err error) { c.fail("a manager's store never fails", "%s: %v", m.id, err) },
	}
	if c.cfg.LogOutput != nil {
		cfg.LogOutput = &prefixWriter{w: c.cfg.LogOutput, prefix: []byte(m.id + " ")}
	}
	return cfg
}

// start opens the manager's Node on its data directory. bootstrap makes
// every manager a voter of one configuration, on a new data directory.
//
// It waits for the last incarnation's close without holding m.mu: raft's
// goroutines, which that close waits for, may call current (a failpoint's
// callback).
func (m *manager) start(bootstrap bool) error {
	m.starting.Lock()
	defer m.starting.Unlock()
	if m.current() != nil {
		return nil
	}
	if err := m.closed(); err != nil {
		return fmt.Errorf("raftsim: %s did not close: %w", m.id, err)
	}
	c := m.c
	if c.cfg.Broken == BrokenForgetfulRestart && !bootstrap {
		if err := forget(m.dir); err != nil {
			return err
		}
	}
	inc := &incarnation{m: m, dead: make(chan struct{}), closed: make(chan struct{})}
	inc.ep = newEndpoint(m.id)
	inc.ep.rpcs = make(chan hraft.RPC, 16)
	inc.ep.api = inc.serve
	inc.trans = newTransport(c.net, inc.ep)
	node, err := wraft.Open(m.nodeConfig(inc))
	if err != nil {
		return fmt.Errorf("raftsim: start %s: %w", m.id, err)
	}
	inc.node = node
	if bootstrap {
		var members []wraft.Member
		for _, o := range c.managers {
			members = append(members, wraft.Member{ID: o.id, Addr: o.id, Voter: true})
		}
		if err := node.BootstrapCluster(members); err != nil {
			_ = node.Close()
			return fmt.Errorf("raftsim: bootstrap %s: %w", m.id, err)
		}
	}
	c.net.up(inc.ep)
	m.mu.Lock()
	m.inc, m.last = inc, inc
	m.mu.Unlock()
	return nil
}

// crash stops the manager as kill -9 would, as far as the others can
// tell: it leaves the network at once (messages in flight to and from it
// are lost) and its disk stops making raft wait. Its Node then closes as
// production's does, in the background: calls in flight get raft's
// answer or an unknown outcome, raft shuts down, the stores close. What
// raft and the FSM write meanwhile stays in the files, as after kill -9
// (the bolt store's unsynced pages are in the page cache), and reaches no
// one. The next start waits for the close to end.
//
// It may be called from any goroutine of the bubble, raft's own included
// (a failpoint's crash): nothing here waits for raft.
func (m *manager) crash() {
	m.mu.Lock()
	inc := m.inc
	m.inc = nil
	m.mu.Unlock()
	if inc == nil {
		return
	}
	close(inc.dead)
	_ = inc.trans.Close()
	go func() {
		inc.closeErr = inc.node.Close()
		close(inc.closed)
	}()
}

// closed waits until the manager's latest Node has closed.
func (m *manager) closed() error {
	m.mu.Lock()
	last := m.last
	m.mu.Unlock()
	if last == nil {
		return nil
	}
	<-last.closed
	return last.closeErr
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

// prefixWriter starts every write, a line of raft's log, with the
// manager's ID.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.w.Write(append(bytes.Clone(p.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}
