package raftsim

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warren-orchestrator/warren/backends/bolt"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/sim"
)

// Broken selects a deliberately wrong variant of the system, to prove
// that the checks can fail.
type Broken int

// Broken variants.
const (
	BrokenNone Broken = iota
	// BrokenAckBeforeCommit: the manager acknowledges a write as soon as
	// raft has taken it, before it is committed.
	BrokenAckBeforeCommit
	// BrokenStaleRead: any manager serves a read from its own store,
	// without a Barrier, and clients read from any manager.
	BrokenStaleRead
	// BrokenForgetfulRestart: a manager restarts with its raft.db deleted,
	// forgetting its log, its term and its vote.
	BrokenForgetfulRestart
)

func (b Broken) String() string {
	return [...]string{"none", "ack-before-commit", "stale-read", "forgetful-restart"}[b]
}

// Config is a cluster of real managers.
type Config struct {
	Managers int
	Net      NetConfig
	Disk     DiskConfig
	// Dir holds the managers' data directories (one per manager, removed
	// by Close). Empty: a new directory under /dev/shm when it exists
	// (tmpfs, where raft.db's fsyncs cost next to nothing in wall time),
	// else under os.TempDir.
	Dir string
	// SnapshotThreshold and SnapshotInterval set raft's snapshot cadence
	// (also its TrailingLogs, as backends/raft does); zero keeps raft's
	// defaults, under which a 30-second run never snapshots.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	Broken            Broken
	// LogOutput receives raft's log lines; nil discards them.
	LogOutput io.Writer
}

// Election is a manager becoming leader.
type Election struct {
	At   time.Duration
	Term uint64
	ID   string
}

// Cluster is N real managers on the simulated network, and what checks
// them. It must be created and used inside one synctest bubble, and
// started, restarted and closed from one goroutine (a crash may come from
// any).
type Cluster struct {
	cfg      Config
	src      *Source
	net      *Network
	managers []*manager
	client   *endpoint
	hist     *History
	start    time.Time
	dir      string
	ownDir   bool
	// fps is the run's side of the failpoints, nil without them.
	fps *failpoints
	// closing closes when Close begins; bg are the goroutines that must
	// end before it goes on (restarts a failpoint's crash scheduled).
	closing chan struct{}
	bg      sync.WaitGroup

	mu        sync.Mutex
	violation *sim.Violation
	leaders   map[uint64]string // term -> leader
	elections []Election
	bgErr     error             // what the bg goroutines failed to do
	committed map[uint64]string // index -> "key=value" applied there
	ackedAt   map[uint64]string // index -> "key=value" acknowledged there
	acked     map[string]string // key -> value of every acknowledged create
	created   []string          // keys of every create issued
	events    []string
}

// NewCluster creates the managers' data directories and the network; Start
// starts the managers.
func NewCluster(cfg Config, src *Source) (*Cluster, error) {
	if cfg.Managers < 1 {
		return nil, fmt.Errorf("raftsim: %d managers: use 3 or 5", cfg.Managers)
	}
	c := &Cluster{
		cfg: cfg, src: src, net: NewNetwork(src, cfg.Net), hist: &History{},
		leaders: map[uint64]string{}, committed: map[uint64]string{}, ackedAt: map[uint64]string{},
		acked: map[string]string{}, start: time.Now(), dir: cfg.Dir, closing: make(chan struct{}),
	}
	if c.dir == "" {
		base := os.TempDir()
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			base = "/dev/shm"
		}
		dir, err := os.MkdirTemp(base, "raftsim-")
		if err != nil {
			return nil, fmt.Errorf("raftsim: %w", err)
		}
		c.dir, c.ownDir = dir, true
	}
	for i := range cfg.Managers {
		id := fmt.Sprintf("manager-%d", i+1)
		c.managers = append(c.managers, &manager{c: c, id: id, dir: filepath.Join(c.dir, id), disk: &disk{src: src, cfg: cfg.Disk}})
	}
	c.client = newEndpoint("client")
	c.net.up(c.client)
	return c, nil
}

// Start starts every manager on a new data directory, all voters of one
// configuration.
func (c *Cluster) Start() error {
	for _, m := range c.managers {
		if err := m.start(true); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every manager and removes the data directories the
// cluster made.
func (c *Cluster) Close() error {
	var errs []error
	close(c.closing)
	c.bg.Wait()
	for _, m := range c.managers {
		m.crash()
	}
	for _, m := range c.managers {
		errs = append(errs, m.closed())
	}
	c.net.down(c.client)
	c.net.Close()
	if c.ownDir {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	return errors.Join(errs...)
}

// Elapsed is the virtual time since the cluster was created.
func (c *Cluster) Elapsed() time.Duration { return time.Since(c.start) }

// History is the client-visible history.
func (c *Cluster) History() *History { return c.hist }

// Network is the simulated network.
func (c *Cluster) Network() *Network { return c.net }

func (c *Cluster) manager(id string) *manager {
	for _, m := range c.managers {
		if m.id == id {
			return m
		}
	}
	return nil
}

// event records a line of the run's log.
func (c *Cluster) event(format string, args ...any) {
	line := fmt.Sprintf("%v ", c.Elapsed().Round(time.Microsecond)) + fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.events = append(c.events, line)
	c.mu.Unlock()
}

// Events is the run's log: faults, elections, violations.
func (c *Cluster) Events() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// fail records a broken invariant; the first one is the run's result.
func (c *Cluster) fail(invariant, format string, args ...any) {
	v := &sim.Violation{Invariant: invariant, At: c.Elapsed(), Detail: fmt.Sprintf(format, args...)}
	c.event("VIOLATION %v", v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.violation == nil {
		c.violation = v
	}
}

// Violation is the first broken invariant, nil while none is.
func (c *Cluster) Violation() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.violation == nil {
		return nil
	}
	return c.violation
}

// elected records a manager becoming leader in a term: a second leader
// for one term breaks the invariant. Called on the manager's raft
// goroutine as it takes the lead.
func (c *Cluster) elected(id string, term uint64) {
	c.mu.Lock()
	prev, seen := c.leaders[term]
	c.leaders[term] = id
	c.elections = append(c.elections, Election{At: c.Elapsed(), Term: term, ID: id})
	c.mu.Unlock()
	c.event("%s leads in term %d", id, term)
	if seen && prev != id {
		c.fail("one leader per term", "%s and %s both led in term %d", prev, id, term)
	}
}

// Elections lists every manager taking the lead, in order.
func (c *Cluster) Elections() []Election {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.elections)
}

// applied records a command a manager's FSM applied at index: every
// manager must apply the same write at an index, and a write acknowledged
// at an index must be the one applied there. Called on the FSM goroutine.
func (c *Cluster) applied(id string, index uint64, cmd fsm.Command) {
	key, value, ok := written(cmd)
	if !ok {
		return
	}
	w := key + "=" + value
	c.mu.Lock()
	prev, seen := c.committed[index]
	if !seen {
		c.committed[index] = w
	}
	acked, wasAcked := c.ackedAt[index]
	c.mu.Unlock()
	if seen && prev != w {
		c.fail("committed entries agree", "%s applied %s at index %d, where another manager applied %s", id, w, index, prev)
	}
	if wasAcked && acked != w {
		c.fail("no acknowledged write is lost", "%s was acknowledged at index %d, but %s applied %s there", acked, index, id, w)
	}
}

// acknowledged records a write a client saw acknowledged (at index, when
// the manager said).
func (c *Cluster) acknowledged(op opKind, key, value string, index uint64) {
	w := key + "=" + value
	c.mu.Lock()
	if op == opCreate {
		c.acked[key] = value
	}
	var prev, committed string
	var twice, other bool
	if index > 0 {
		prev, twice = c.ackedAt[index]
		c.ackedAt[index] = w
		committed, other = c.committed[index]
	}
	c.mu.Unlock()
	if twice && prev != w {
		c.fail("no acknowledged write is lost", "%s and %s were both acknowledged at index %d", prev, w, index)
	}
	if other && committed != w {
		c.fail("no acknowledged write is lost", "%s was acknowledged at index %d, where %s is committed", w, index, committed)
	}
}

// issued records the key of a create a client sends, for reads to pick.
func (c *Cluster) issued(key string) {
	c.mu.Lock()
	c.created = append(c.created, key)
	c.mu.Unlock()
}

// isAcked reports whether the create of key was acknowledged.
func (c *Cluster) isAcked(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.acked[key]
	return ok
}

// anyCreated draws the key of a create issued so far.
func (c *Cluster) anyCreated() (string, bool) {
	c.mu.Lock()
	n := len(c.created)
	c.mu.Unlock()
	if n == 0 {
		return "", false
	}
	i := c.src.IntN(n)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created[i], true
}

// Leader is the ID of the manager leading in the highest term, "" when
// none is up and leading.
func (c *Cluster) Leader() string {
	if m := c.leader(); m != nil {
		return m.id
	}
	return ""
}

// leader is the manager leading in the highest term, nil when none is.
func (c *Cluster) leader() *manager {
	var best *manager
	var term uint64
	for _, m := range c.managers {
		inc := m.current()
		if inc == nil || !inc.node.IsLeader() {
			continue
		}
		if t := inc.node.Term(); best == nil || t > term {
			best, term = m, t
		}
	}
	return best
}

// Crash stops a manager: it is off the network at once, and its Node
// closes in the background (see manager.crash).
func (c *Cluster) Crash(id string) error {
	m := c.manager(id)
	if m == nil {
		return fmt.Errorf("raftsim: no manager %q", id)
	}
	if m.current() == nil {
		return nil
	}
	c.event("crash %s", id)
	m.crash()
	return nil
}

// Restart starts a crashed manager again on its files.
func (c *Cluster) Restart(id string) error {
	m := c.manager(id)
	if m == nil {
		return fmt.Errorf("raftsim: no manager %q", id)
	}
	if m.current() != nil {
		return nil
	}
	c.event("restart %s", id)
	return m.start(false)
}

// restartAfter restarts a manager after span, from a goroutine of its
// own, unless the cluster closes first.
func (c *Cluster) restartAfter(id string, span time.Duration) {
	c.bg.Go(func() {
		timer := time.NewTimer(span)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-c.closing:
			return
		}
		if err := c.Restart(id); err != nil {
			c.mu.Lock()
			c.bgErr = errors.Join(c.bgErr, err)
			c.mu.Unlock()
		}
	})
}

// StallDisk makes a manager's disk complete no write for span.
func (c *Cluster) StallDisk(id string, span time.Duration) error {
	m := c.manager(id)
	if m == nil {
		return fmt.Errorf("raftsim: no manager %q", id)
	}
	c.event("disk-stall %s for %v", id, span)
	m.disk.stall(span)
	return nil
}

// Partition cuts the network into groups (manager IDs and "client");
// nodes in no group form one more.
func (c *Cluster) Partition(groups [][]string) {
	c.net.Partition(groups)
	c.event("partition %s", c.net)
}

// Heal ends every partition.
func (c *Cluster) Heal() {
	if c.net.Partitioned() {
		c.net.Heal()
		c.event("heal")
	}
}

// Converged reports nil once every manager is up, one leads, and every
// manager has applied every entry of the leader's log.
func (c *Cluster) Converged() error {
	l := c.leader()
	if l == nil {
		return errors.New("no leader")
	}
	li := l.current()
	if li == nil {
		return errors.New("no leader")
	}
	lp := li.node.Progress()
	if lp.Committed < lp.Last {
		return fmt.Errorf("%s has committed %d of %d entries", l.id, lp.Committed, lp.Last)
	}
	var applied []uint64
	for _, m := range c.managers {
		inc := m.current()
		if inc == nil {
			return fmt.Errorf("%s is down", m.id)
		}
		if a := inc.node.Progress().Applied; a < lp.Last {
			return fmt.Errorf("%s has applied %d of %d entries", m.id, a, lp.Last)
		}
		applied = append(applied, inc.node.Applied())
	}
	for i, a := range applied {
		if a != applied[0] {
			return fmt.Errorf("%s's store holds entries up to %d, %s's up to %d", c.managers[i].id, a, c.managers[0].id, applied[0])
		}
	}
	return nil
}

// CheckStores checks, once the cluster has converged, that every
// acknowledged create is in every manager's store with its value, and that
// the stores are equal.
func (c *Cluster) CheckStores() error {
	c.mu.Lock()
	acked := make(map[string]string, len(c.acked))
	for k, v := range c.acked {
		acked[k] = v
	}
	c.mu.Unlock()
	var first string
	var firstSum uint64
	for _, m := range c.managers {
		inc := m.current()
		if inc == nil {
			return fmt.Errorf("raftsim: %s is down", m.id)
		}
		for _, key := range slices.Sorted(maps.Keys(acked)) {
			exists, value, err := readObject(inc.node.Store(), key)
			if err != nil {
				return err
			}
			if !exists {
				return &sim.Violation{Invariant: "no acknowledged write is lost", At: c.Elapsed(),
					Detail: fmt.Sprintf("the create of %s was acknowledged, but %s's store does not hold it", key, m.id)}
			}
			// A service's value changes with updates; a secret's never.
			if value != acked[key] && strings.HasPrefix(key, secretPrefix) {
				return &sim.Violation{Invariant: "no acknowledged write is lost", At: c.Elapsed(),
					Detail: fmt.Sprintf("the create of %s with %s was acknowledged, but %s's store holds %s", key, acked[key], m.id, value)}
			}
		}
		sum, err := storeSum(inc.node.View)
		if err != nil {
			return err
		}
		if first == "" {
			first, firstSum = m.id, sum
		} else if sum != firstSum {
			return &sim.Violation{Invariant: "the stores agree after convergence", At: c.Elapsed(),
				Detail: fmt.Sprintf("%s's store differs from %s's: %s", m.id, first, storeDiff(c.managers[0].current().node.View, inc.node.View))}
		}
	}
	return nil
}

// storeSum hashes every record and index of a store, and the raft index
// it has applied (its meta bucket is otherwise the store's own
// bookkeeping, which differs between managers).
func storeSum(view viewer) (uint64, error) {
	h := fnv.New64a()
	err := view(func(tx state.KVTx) error {
		for _, b := range state.Buckets() {
			_, _ = io.WriteString(h, b+"\x00")
			if err := tx.Scan(b, nil, func(k, v []byte) error {
				_, _ = h.Write(k)
				_, _ = h.Write([]byte{0})
				_, _ = h.Write(v)
				_, _ = h.Write([]byte{0})
				return nil
			}); err != nil {
				return err
			}
		}
		_, _ = h.Write(tx.Get(bolt.MetaBucket, []byte("raft_applied")))
		return nil
	})
	return h.Sum64(), err
}

// viewer runs fn in a read transaction of a manager's warren.db
// (Node.View).
type viewer func(fn func(state.KVTx) error) error

// storeDiff names the first difference between two stores.
func storeDiff(a, b viewer) string {
	dump := func(view viewer) map[string][]byte {
		out := map[string][]byte{}
		_ = view(func(tx state.KVTx) error {
			for _, bk := range state.Buckets() {
				_ = tx.Scan(bk, nil, func(k, v []byte) error {
					out[bk+"/"+string(k)] = bytes.Clone(v)
					return nil
				})
			}
			out["meta/raft_applied"] = bytes.Clone(tx.Get(bolt.MetaBucket, []byte("raft_applied")))
			return nil
		})
		return out
	}
	da, db := dump(a), dump(b)
	keys := map[string]bool{}
	for k := range da {
		keys[k] = true
	}
	for k := range db {
		keys[k] = true
	}
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if !bytes.Equal(da[k], db[k]) {
			diffs = append(diffs, fmt.Sprintf("%s: %q vs %q", k, da[k], db[k]))
			if len(diffs) == 3 {
				break
			}
		}
	}
	return strings.Join(diffs, "; ")
}
