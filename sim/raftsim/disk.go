package raftsim

import (
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"

	wraft "github.com/warren-orchestrator/warren/backends/raft"
)

// DiskConfig shapes a manager's simulated disk.
type DiskConfig struct {
	// Each write of raft's log or stable store waits a latency drawn
	// uniformly from [FsyncMin, FsyncMax] (virtual time) before it reaches
	// raft.db.
	FsyncMin, FsyncMax time.Duration
}

// disk adds a drawn fsync latency to a manager's raft.db writes, in
// order, and holds them while the disk stalls. The real bbolt fsync
// happens too, but inside a synctest bubble a syscall takes no virtual
// time, so without this a disk would be infinitely fast. It outlives a
// manager's incarnations, as the hardware does.
type disk struct {
	src *Source
	cfg DiskConfig

	mu         sync.Mutex
	busyUntil  time.Time
	stallUntil time.Time
}

// sync waits until a write issued now would be durable: after the writes
// before it, after any stall, plus a drawn latency. When the manager
// crashes (dead closes) the wait ends at once and the write goes through,
// as if the crash had come just after it: hashicorp/raft does not survive
// its stores failing (it panics when it cannot save its term, and a
// follower whose append fails after it truncated its log later panics
// looking for entries it thinks it has), and a write that is merely slow
// would hold raft up at shutdown. Whatever raft does after the crash
// reaches no one: the manager is off the network.
func (d *disk) sync(dead <-chan struct{}) {
	d.mu.Lock()
	start := time.Now()
	if d.busyUntil.After(start) {
		start = d.busyUntil
	}
	if d.stallUntil.After(start) {
		start = d.stallUntil
	}
	d.busyUntil = start.Add(d.src.Between(d.cfg.FsyncMin, d.cfg.FsyncMax))
	done := d.busyUntil
	d.mu.Unlock()
	timer := time.NewTimer(time.Until(done))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-dead:
	}
}

// stall makes the disk complete no write for span.
func (d *disk) stall(span time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if until := time.Now().Add(span); until.After(d.stallUntil) {
		d.stallUntil = until
	}
}

// slowStore is raft's log and stable store on raft.db, each write delayed
// by the manager's disk, for one incarnation: what Node's
// Config.WrapLogStore makes of the bolt store. It has exactly the store's
// capabilities (wraft.LogStore).
type slowStore struct {
	wraft.LogStore
	d    *disk
	dead <-chan struct{}
}

var (
	_ hraft.LogStore    = slowStore{}
	_ hraft.StableStore = slowStore{}
)

func (s slowStore) StoreLog(l *hraft.Log) error {
	s.d.sync(s.dead)
	return s.LogStore.StoreLog(l)
}

func (s slowStore) StoreLogs(logs []*hraft.Log) error {
	s.d.sync(s.dead)
	return s.LogStore.StoreLogs(logs)
}

func (s slowStore) DeleteRange(lo, hi uint64) error {
	s.d.sync(s.dead)
	return s.LogStore.DeleteRange(lo, hi)
}

func (s slowStore) Set(k, v []byte) error {
	s.d.sync(s.dead)
	return s.LogStore.Set(k, v)
}

func (s slowStore) SetUint64(k []byte, v uint64) error {
	s.d.sync(s.dead)
	return s.LogStore.SetUint64(k, v)
}
