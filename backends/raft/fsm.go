package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	hraft "github.com/hashicorp/raft"
	"github.com/pingcap/failpoint"

	"github.com/warren-orchestrator/warren/backends/bolt"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
)

// appliedKey is where the FSM records, in the same transaction as the
// entry's changes, the index of the last raft entry in warren.db.
const appliedKey = "raft_applied"

// errRetry aborts a batch transaction so that it runs again without the
// entry that failed.
var errRetry = errors.New("raft: retry the batch")

// FSM applies committed raft entries, the core's typed commands, to the
// bolt store. warren.db is the FSM's state itself, not a cache rebuilt from
// snapshots: it records the last index it applied, so after a restart raft
// replays only what warren.db lacks (raft's snapshot restore on start is
// off, see Config). The store is opened with NoSync: the raft log has every
// entry durably before it is applied, so an apply need not wait for a disk.
type FSM struct {
	kv      *bolt.KV
	store   state.Store
	applied atomic.Uint64
	// fatal is called when the store cannot record an entry: the replica
	// cannot go on without diverging from the others.
	fatal func(error)
	// observe, when set, sees each command applied without error, in log
	// order, once its transaction committed.
	observe func(index uint64, c fsm.Command)
	// id names the manager to the failpoints (Node sets it).
	id string
}

// Observe makes fn see every command the FSM applies without error, with
// its log index, in log order, after it is committed to the store. fn runs
// on raft's FSM goroutine and must not block: raft applies nothing while
// it runs. Set it before raft starts.
func (f *FSM) Observe(fn func(index uint64, c fsm.Command)) { f.observe = fn }

var (
	_ hraft.FSM         = (*FSM)(nil)
	_ hraft.BatchingFSM = (*FSM)(nil)
)

// NewFSM returns the FSM on kv, resuming after the last entry kv holds.
// fatal is called (from raft's FSM goroutine) when the store fails; it must
// not return normally in production: nil means panic.
func NewFSM(kv *bolt.KV, fatal func(error)) (*FSM, error) {
	if fatal == nil {
		fatal = func(err error) { panic(err) }
	}
	f := &FSM{kv: kv, store: state.New(kv), fatal: fatal}
	if err := f.loadApplied(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *FSM) loadApplied() error {
	return f.kv.View(func(tx state.KVTx) error {
		v := tx.Get(bolt.MetaBucket, []byte(appliedKey))
		switch len(v) {
		case 0:
			f.applied.Store(0)
		case 8:
			f.applied.Store(binary.BigEndian.Uint64(v))
		default:
			return fmt.Errorf("raft: %s in %s is %d bytes, not 8: the file is damaged", appliedKey, bolt.FileName, len(v))
		}
		return nil
	})
}

// Store is the replicated state as this manager has applied it.
func (f *FSM) Store() state.Store { return f.store }

// Applied is the index of the last entry in the store.
func (f *FSM) Applied() uint64 { return f.applied.Load() }

// Apply implements raft.FSM. The response is nil or the command's error
// (a conflict, a name taken, bad input): the same on every manager, since
// every manager applies the same entries to the same state.
func (f *FSM) Apply(l *hraft.Log) any {
	return f.ApplyBatch([]*hraft.Log{l})[0]
}

// ApplyBatch implements raft.BatchingFSM: the commands of a batch share one
// store transaction. A command that fails is answered with its error and
// the batch runs again without it, so each command sees exactly the state
// it would have seen applied alone.
func (f *FSM) ApplyBatch(logs []*hraft.Log) []any {
	out := make([]any, len(logs))
	last := f.applied.Load()
	var cmds []fsm.Command
	var todo []int
	var indexes []uint64
	for i, l := range logs {
		if l.Index <= last {
			continue // in warren.db already: replayed after a restart
		}
		last = l.Index
		if l.Type != hraft.LogCommand {
			continue
		}
		c, err := fsm.Decode(l.Data)
		if err != nil {
			out[i] = err
			continue
		}
		cmds = append(cmds, c)
		todo = append(todo, i)
		indexes = append(indexes, l.Index)
	}
	if last == f.applied.Load() {
		return out
	}
	failpoint.InjectCall(FailpointBeforeApplyBatch, f.id, last)
	for {
		failed := -1
		var cmdErr error
		err := f.kv.Update(func(kt state.KVTx) error {
			tx := state.TxOf(kt)
			for j, c := range cmds {
				if c == nil {
					continue
				}
				if err := fsm.ApplyTx(tx, c); err != nil {
					failed, cmdErr = j, err
					return errRetry
				}
			}
			return kt.Put(bolt.MetaBucket, []byte(appliedKey), binary.BigEndian.AppendUint64(nil, last))
		})
		if failed >= 0 {
			out[todo[failed]] = cmdErr
			cmds[failed] = nil
			continue
		}
		if err != nil {
			f.fatal(fmt.Errorf("raft: apply entries up to %d to %s: %w", last, bolt.FileName, err))
			return out
		}
		f.applied.Store(last)
		if f.observe != nil {
			for j, c := range cmds {
				if c != nil {
					f.observe(indexes[j], c)
				}
			}
		}
		failpoint.InjectCall(FailpointAfterApplyBatch, f.id, last)
		return out
	}
}

// Snapshot implements raft.FSM: it pins the store's current state, cheaply;
// Persist streams it while applies go on.
func (f *FSM) Snapshot() (hraft.FSMSnapshot, error) {
	s, err := f.kv.Snapshot()
	if err != nil {
		return nil, err
	}
	return &snapshot{s: s, id: f.id}, nil
}

// Restore implements raft.FSM: the store's content becomes the snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.kv.Restore(rc); err != nil {
		return err
	}
	return f.loadApplied()
}

// snapshot is a raft.FSMSnapshot of the store: a complete warren.db file,
// streamed to the sink in whatever chunks the sink takes.
type snapshot struct {
	s  *bolt.Snapshot
	id string
}

func (s *snapshot) Persist(sink hraft.SnapshotSink) error {
	// Persist unpins the store's pages itself: raft's RecoverCluster never
	// calls Release, and a pinned read transaction would block closing
	// the store for ever. Release after it is a no-op.
	defer s.Release()
	if _, err := s.s.WriteTo(&chunks{w: sink, id: s.id}); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() { _ = s.s.Close() }

// chunks passes a snapshot's writes on, meeting FailpointPersistChunk
// between two of them. It is deliberately not an io.ReaderFrom, so that
// bbolt copies the file through it in 32 KiB writes.
type chunks struct {
	w       io.Writer
	id      string
	written int64
}

func (c *chunks) Write(p []byte) (int, error) {
	if c.written > 0 {
		var err error
		failpoint.InjectCall(FailpointPersistChunk, c.id, c.written, &err)
		if err != nil {
			return 0, err
		}
	}
	n, err := c.w.Write(p)
	c.written += int64(n)
	return n, err
}

// SeedStore makes dataDir's warren.db the content of a backup (a warren.db
// stream, as Node.Backup writes it), for a manager that will start a new
// raft log over it (warren cluster restore, then init --force-new-cluster).
// The backup's applied index belongs to the old log, so it is dropped:
// the new log's entries must all apply. The stream is checked before
// anything is replaced.
func SeedStore(dataDir string, backup io.Reader) error {
	kv, err := bolt.OpenKV(dataDir, nil)
	if err != nil {
		return err
	}
	if err := kv.Restore(backup); err != nil {
		_ = kv.Close()
		return err
	}
	err = kv.Update(func(tx state.KVTx) error { return tx.Delete(bolt.MetaBucket, []byte(appliedKey)) })
	if cerr := kv.Close(); err == nil {
		err = cerr
	}
	return err
}
