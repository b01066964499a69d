package bolt

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/warren-orchestrator/warren/orchestrator/state"
)

const (
	// maxBatch bounds how many single writes share one commit, so that one
	// commit's latency stays bounded under heavy load.
	maxBatch = 256
	// metaApplied records the sequence of the last log record that is in
	// warren.db.
	metaApplied = "wal_applied"
)

// Options tune a KV; the zero value gives the defaults.
type Options struct {
	// CheckpointBytes is how much the memtable may hold before its writes
	// are checkpointed into warren.db. Default 4 MiB (raft.db: 1 MiB).
	CheckpointBytes int64
	// IdleCheckpoint checkpoints when no write came for this long, so that
	// warren.db is complete in itself while the store is idle. Default 1s.
	IdleCheckpoint time.Duration
	// NoSync writes each commit to the log without waiting for the disk:
	// a killed process loses nothing (the kernel has the log), a power
	// failure may lose the last commits. Only for a store that can replay
	// its writes from a log of its own, as the raft FSM does from the
	// raft log. Checkpoints are synced either way.
	NoSync bool
}

func (o *Options) withDefaults(l layout) Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.CheckpointBytes <= 0 {
		r.CheckpointBytes = cmp.Or(l.checkpointBytes, 4<<20)
	}
	if r.IdleCheckpoint <= 0 {
		r.IdleCheckpoint = time.Second
	}
	return r
}

// KV is state.KV on warren.db and its write-ahead log. (raft.db and
// raft.wal, under RaftStore, are a second KV of another layout.)
//
// A commit appends its transaction to warren.wal and fdatasyncs it once;
// the write is then acknowledged and visible through the memtable. From
// time to time (CheckpointBytes, IdleCheckpoint, Close) the memtable is
// written into warren.db in one BoltDB transaction (which syncs twice), and
// only then is the log emptied. Opening replays what the log holds beyond
// warren.db's meta/wal_applied. So every acknowledged write survives a
// crash, each commit costs one sync, and warren.db itself is only ever
// changed by ordinary, fully synced BoltDB transactions.
//
// KV implements state.Batcher: single writes that arrive while a commit is
// in flight share the next one.
type KV struct {
	layout layout
	db     *bbolt.DB
	wal    *wal
	opts   Options
	mem    atomic.Pointer[memtable]

	writer    sync.Mutex // serializes write transactions and checkpoints
	failed    error      // set when the log or a checkpoint failed; sticky
	lastWrite time.Time

	// Group commit: Batch callers queue up; one of them, the leader,
	// commits what is queued, then hands the lead to the first caller
	// that queued meanwhile. queue is non-empty only while leading.
	queue   []*batchReq
	leading bool
	qmu     sync.Mutex

	closing chan struct{}
	stopped chan struct{}
	closed  atomic.Bool
	once    sync.Once
}

type batchReq struct {
	fn   func(state.KVTx) error
	err  error
	lead bool          // set before done is closed: the caller leads next
	done chan struct{} // closed once err is set, or to hand over the lead
}

// View implements state.KV. It pairs a memtable with the warren.db state it
// was built on: if a checkpoint slipped in between taking the two, it takes
// them again.
func (kv *KV) View(fn func(state.KVTx) error) error {
	return kv.view(func(t *tx) error { return fn(t) })
}

func (kv *KV) view(fn func(*tx) error) error {
	if kv.closed.Load() {
		return state.ErrClosed
	}
	for {
		m := kv.mem.Load()
		btx, err := kv.db.Begin(false)
		if err != nil {
			return fmt.Errorf("bolt: %w", err)
		}
		if applied(btx) != m.base {
			_ = btx.Rollback()
			runtime.Gosched()
			continue
		}
		defer btx.Rollback()
		return fn(&tx{db: btx, mem: m})
	}
}

// get calls fn with the value of key as of the last commit (nil when
// there is none), valid only while fn runs. A key the memtable holds is
// read from it alone: a published memtable never changes, so no pairing
// with warren.db is needed.
func (kv *KV) get(bucket string, key []byte, fn func(v []byte) error) error {
	if kv.closed.Load() {
		return state.ErrClosed
	}
	if e, ok := kv.mem.Load().get(bucket, key); ok {
		if e.del {
			return fn(nil)
		}
		return fn(e.value)
	}
	return kv.view(func(t *tx) error { return fn(t.Get(bucket, key)) })
}

// Update implements state.KV.
func (kv *KV) Update(fn func(state.KVTx) error) error {
	return kv.update(func(t *tx) error { return fn(t) })
}

func (kv *KV) update(fn func(*tx) error) error {
	kv.writer.Lock()
	defer kv.writer.Unlock()
	t, err := kv.begin()
	if err != nil {
		return err
	}
	if err := fn(t); err != nil {
		_ = t.db.Rollback()
		return err
	}
	return kv.commit(t)
}

// Batch implements state.Batcher. A lone writer commits on its own
// goroutine at once; writers that arrive during a commit are committed
// together by one of them in the next.
func (kv *KV) Batch(fn func(state.KVTx) error) error {
	r := &batchReq{fn: fn, done: make(chan struct{})}
	kv.qmu.Lock()
	kv.queue = append(kv.queue, r)
	if kv.leading {
		kv.qmu.Unlock()
		<-r.done
		if !r.lead {
			return r.err
		}
		kv.qmu.Lock()
	}
	kv.leading = true
	// r is first in the queue: it queued on an empty queue, or was handed
	// the lead as the first waiting.
	batch := kv.queue[:min(len(kv.queue), maxBatch)]
	kv.queue = kv.queue[len(batch):]
	kv.qmu.Unlock()

	kv.commitBatch(batch)

	kv.qmu.Lock()
	if len(kv.queue) > 0 {
		next := kv.queue[0]
		next.lead = true
		close(next.done)
	} else {
		kv.leading = false
	}
	kv.qmu.Unlock()
	return r.err
}

// Close waits for the commit in flight, checkpoints, and closes the files.
// Writes after it fail with state.ErrClosed.
func (kv *KV) Close() error {
	var err error
	kv.once.Do(func() {
		close(kv.closing)
		<-kv.stopped
		kv.writer.Lock()
		defer kv.writer.Unlock()
		kv.closed.Store(true)
		if kv.failed == nil {
			err = kv.checkpoint()
		}
		if e := kv.wal.close(); err == nil {
			err = e
		}
		if e := kv.db.Close(); err == nil {
			err = e
		}
	})
	return err
}

func (kv *KV) begin() (*tx, error) {
	if kv.closed.Load() {
		return nil, state.ErrClosed
	}
	if kv.failed != nil {
		return nil, kv.failed
	}
	btx, err := kv.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("bolt: %w", err)
	}
	return &tx{db: btx, mem: kv.mem.Load().working(), writable: true, cloned: map[string]bool{}}, nil
}

// commit makes t durable in the log, publishes its memtable, and
// checkpoints if the memtable has grown enough. Called with kv.writer held.
func (kv *KV) commit(t *tx) error {
	_ = t.db.Rollback() // a checkpoint may need to grow the file's mapping
	if len(t.ops) == 0 {
		return nil
	}
	seq := t.mem.seq + 1
	if err := kv.wal.append(seq, t.ops); err != nil {
		// The log's state on disk is unknown now: refuse all later writes
		// rather than guess. Nothing acknowledged is lost.
		kv.failed = fmt.Errorf("%w; the store refuses writes until warren restarts", err)
		return kv.failed
	}
	t.mem.seq = seq
	kv.mem.Store(t.mem)
	kv.lastWrite = time.Now()
	if t.mem.size >= kv.opts.CheckpointBytes {
		// The write is durable whatever happens here; a failed checkpoint
		// stops later writes (their records would pile up unbounded).
		if err := kv.checkpoint(); err != nil {
			kv.failed = fmt.Errorf("%w; the store refuses writes until warren restarts (acknowledged writes are safe in %s)", err, kv.layout.wal)
		}
	}
	return nil
}

// checkpoint writes the memtable into warren.db, then empties the log.
// Called with kv.writer held.
func (kv *KV) checkpoint() error {
	m := kv.mem.Load()
	if m.seq == m.base {
		return nil
	}
	err := kv.db.Update(func(btx *bbolt.Tx) error {
		for name, tr := range m.trees {
			b := btx.Bucket([]byte(name))
			if kv.layout.appendOnly[name] {
				b.FillPercent = 1.0 // keys come in order: no split is ever followed by an insert
			}
			var err error
			tr.Ascend(func(e entry) bool {
				if e.del {
					err = b.Delete(e.key)
				} else {
					err = b.Put(e.key, e.value)
				}
				return err == nil
			})
			if err != nil {
				return err
			}
		}
		return btx.Bucket([]byte(metaBucket)).Put([]byte(metaApplied), binary.BigEndian.AppendUint64(nil, m.seq))
	})
	if err != nil {
		return fmt.Errorf("bolt: checkpoint into %s: %w", kv.layout.file, err)
	}
	kv.mem.Store(newMemtable(m.seq))
	return kv.wal.reset()
}

// idleLoop checkpoints once no write came for IdleCheckpoint.
func (kv *KV) idleLoop() {
	defer close(kv.stopped)
	idle := time.NewTicker(kv.opts.IdleCheckpoint)
	defer idle.Stop()
	for {
		select {
		case <-idle.C:
			kv.writer.Lock()
			if kv.failed == nil && time.Since(kv.lastWrite) >= kv.opts.IdleCheckpoint {
				if err := kv.checkpoint(); err != nil {
					kv.failed = err
				}
			}
			kv.writer.Unlock()
		case <-kv.closing:
			return
		}
	}
}

// commitBatch runs the batch in one transaction. A write that fails is
// answered with its error and the transaction is run again without it: its
// failure discarded the others' changes too, and each of them, run again
// from the same state, does the same thing.
func (kv *KV) commitBatch(batch []*batchReq) {
	kv.writer.Lock()
	defer kv.writer.Unlock()
	for len(batch) > 0 {
		t, err := kv.begin()
		if err != nil {
			answer(batch, err)
			return
		}
		failed := -1
		for i, r := range batch {
			if err := r.fn(t); err != nil {
				failed = i
				answer(batch[i:i+1], err)
				break
			}
		}
		if failed < 0 {
			answer(batch, kv.commit(t))
			return
		}
		_ = t.db.Rollback()
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}

// answer gives each request its result. A leader's done channel was
// closed to hand it the lead, and a leader reads its result itself.
func answer(batch []*batchReq, err error) {
	for _, r := range batch {
		r.err = err
		if !r.lead {
			close(r.done)
		}
	}
}

// applied reads meta/wal_applied: 0 for a database that never had a
// checkpoint.
func applied(btx *bbolt.Tx) uint64 {
	v := btx.Bucket([]byte(metaBucket)).Get([]byte(metaApplied))
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}
