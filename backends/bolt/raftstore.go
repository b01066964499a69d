package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-orchestrator/warren/orchestrator/state"
)

// RaftFileName is the raft log and stable store file in the data directory.
const RaftFileName = "raft.db"

// RaftWALFileName is the write-ahead log beside raft.db: the appends not
// yet checkpointed into raft.db. A raft.db without it is complete after a
// clean close; raft.db and raft.wal go together (a data directory's reset
// removes both).
const RaftWALFileName = "raft.wal"

const (
	raftLogsBucket   = "logs"
	raftStableBucket = "stable"
	// raftLogVersion is the first byte of every encoded log; a value this
	// binary does not know is refused rather than misread. It is also
	// raft.db's schema in its meta bucket.
	raftLogVersion byte = 1
)

// raftLayout is raft.db: raft's log and stable store, format
// "warren-raft". A raft.db written before it had a log (the two buckets
// and no meta) is adopted; a raft.wal beside a raft.db this package never
// initialised is discarded (see layout.discardOrphanLog): raft.db is the
// store, and removing it must forget the log, as it always did.
var raftLayout = layout{
	file:             RaftFileName,
	wal:              RaftWALFileName,
	format:           "warren-raft",
	schema:           int(raftLogVersion),
	buckets:          []string{raftLogsBucket, raftStableBucket},
	appendOnly:       map[string]bool{raftLogsBucket: true},
	adoptBare:        true,
	discardOrphanLog: true,
	// A checkpoint stalls appends while it writes the memtable into
	// raft.db, and with 4 KiB pages a 2 KB log fills a page alone; with
	// 16 KiB pages seven share one. Measured here with 2.3 KB logs: a
	// 4 MiB checkpoint took 57-65 ms with 4 KiB pages, 25-37 ms with
	// 16 KiB; a 1 MiB one 10-16 ms. Under 64 writers a long stall lets
	// the leader's, the followers' and the FSMs' checkpoints queue up
	// behind each other (BenchmarkReplicatedWriteParallel's p99 was
	// 140-220 ms with 4 MiB, 73-101 ms with 1 MiB), hence the smaller one.
	pageSize:        16 << 10,
	checkpointBytes: 1 << 20,
}

var (
	// ErrRaftLocked is wrapped by the error for a raft.db that another
	// process has open.
	ErrRaftLocked = errors.New("bolt: raft.db is in use by another warren process")
	// ErrKeyNotFound is returned by Get and GetUint64 for a missing stable
	// key. Its message has no package prefix because hashicorp/raft
	// recognises a missing key by err.Error() == "not found".
	ErrKeyNotFound = errors.New("not found")
)

// Compile-time checks that RaftStore is what raft.NewRaft needs. It does
// not implement raft.MonotonicLogStore: gaps between indexes are tolerated
// (keys are independent), so raft may rely on a gap after restoring a
// snapshot instead of deleting every log.
var (
	_ raft.LogStore    = (*RaftStore)(nil)
	_ raft.StableStore = (*RaftStore)(nil)
)

// RaftStore is raft's LogStore and StableStore on raft.db and its
// write-ahead log raft.wal: a KV like warren.db's. Every write is one
// record in raft.wal, fdatasynced once before it returns (where a bbolt
// commit of raft.db syncs twice), so a write raft was told succeeded
// survives kill -9 and power loss; checkpoints move the records into
// raft.db. It is safe for concurrent use.
type RaftStore struct {
	kv *KV
	// mu serialises the writes that move the ends of the log with the
	// updates of first and last, so that these always describe the last
	// commit: FirstIndex and LastIndex read them without a transaction.
	mu          sync.Mutex
	first, last atomic.Uint64
}

// OpenRaftStore opens (or creates) dataDir/raft.db and raft.wal, and
// replays into raft.db what the log holds beyond it. The directory is made
// 0700 and the files 0600. It fails with ErrRaftLocked, after a short
// wait, when another process has the store open.
func OpenRaftStore(dataDir string) (*RaftStore, error) {
	return openRaftStore(dataDir, nil)
}

func openRaftStore(dataDir string, opts *Options) (*RaftStore, error) {
	kv, err := openKV(dataDir, raftLayout, opts)
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%w (data directory %s); stop it first", ErrRaftLocked, dataDir)
		}
		return nil, err
	}
	s := &RaftStore{kv: kv}
	err = kv.view(func(t *tx) error {
		if k := t.first(raftLogsBucket, nil); k != nil {
			s.first.Store(binary.BigEndian.Uint64(k))
			s.last.Store(binary.BigEndian.Uint64(t.last(raftLogsBucket, nil)))
		}
		return nil
	})
	if err != nil {
		_ = kv.Close()
		return nil, fmt.Errorf("bolt: read the raft log's range: %w", err)
	}
	return s, nil
}

// Close checkpoints raft.wal into raft.db and closes both; the store must
// not be used afterwards.
func (s *RaftStore) Close() error {
	if err := s.kv.Close(); err != nil {
		return fmt.Errorf("bolt: close %s: %w", RaftFileName, err)
	}
	return nil
}

// FirstIndex returns the lowest index stored, or 0 when there is none.
func (s *RaftStore) FirstIndex() (uint64, error) {
	return s.edge(&s.first)
}

// LastIndex returns the highest index stored, or 0 when there is none.
func (s *RaftStore) LastIndex() (uint64, error) {
	return s.edge(&s.last)
}

func (s *RaftStore) edge(index *atomic.Uint64) (uint64, error) {
	if s.kv.closed.Load() {
		return 0, fmt.Errorf("bolt: read raft log index: %w", state.ErrClosed)
	}
	return index.Load(), nil
}

// GetLog reads the log at index into log. A missing index gives
// raft.ErrLogNotFound itself, unwrapped: raft compares it with ==.
func (s *RaftStore) GetLog(index uint64, log *raft.Log) error {
	found := false
	err := s.kv.get(raftLogsBucket, raftKey(index), func(v []byte) error {
		if v == nil {
			return nil
		}
		found = true
		// decodeRaftLog copies: v is valid only inside the transaction.
		return decodeRaftLog(v, log)
	})
	switch {
	case err != nil:
		return fmt.Errorf("bolt: read raft log %d: %w", index, err)
	case !found:
		return raft.ErrLogNotFound
	}
	if log.Index != index {
		return fmt.Errorf("bolt: raft log under key %d holds index %d: %s is corrupt; remove this node from the cluster and rejoin it with an empty data directory", index, log.Index, RaftFileName)
	}
	return nil
}

// StoreLog stores one log, replacing any log at its index.
func (s *RaftStore) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs stores logs in one transaction: all of them or none are
// durable when it returns.
func (s *RaftStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	// The transaction keeps the keys and values it is given, so every log
	// gets its own part of two buffers: two allocations per batch, not
	// per log.
	size := 0
	lo, hi := logs[0].Index, logs[0].Index
	for _, l := range logs {
		size += encodedRaftLogLen(l)
		lo, hi = min(lo, l.Index), max(hi, l.Index)
	}
	keys := make([]byte, 0, 8*len(logs))
	values := make([]byte, 0, size)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.kv.update(func(t *tx) error {
		for _, l := range logs {
			k := len(keys)
			keys = binary.BigEndian.AppendUint64(keys, l.Index)
			v := len(values)
			values = appendRaftLog(values, l)
			if err := t.own(opPut, raftLogsBucket, keys[k:len(keys):len(keys)], values[v:len(values):len(values)]); err != nil {
				return fmt.Errorf("log %d: %w", l.Index, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: store raft logs: %w", err)
	}
	if first := s.first.Load(); first == 0 || lo < first {
		s.first.Store(lo)
	}
	if hi > s.last.Load() {
		s.last.Store(hi)
	}
	return nil
}

// DeleteRange deletes the logs from from to to, both included, in one
// transaction. It visits only the logs that exist: the cost is the number
// of logs deleted, whatever gaps the range spans.
func (s *RaftStore) DeleteRange(from, to uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv.closed.Load() {
		return fmt.Errorf("bolt: delete raft logs %d to %d: %w", from, to, state.ErrClosed)
	}
	first, last := s.first.Load(), s.last.Load()
	if from > to || last == 0 || to < first || from > last {
		return nil // nothing stored in the range: no write
	}
	lo, hi := max(from, first), min(to, last)
	err := s.kv.update(func(t *tx) error {
		for k := t.first(raftLogsBucket, raftKey(lo)); k != nil; {
			i := binary.BigEndian.Uint64(k)
			if i > hi {
				break
			}
			if err := t.own(opDelete, raftLogsBucket, raftKey(i), nil); err != nil {
				return err
			}
			if i == hi {
				break
			}
			k = t.first(raftLogsBucket, raftKey(i+1))
		}
		// The new ends, read through the transaction's own deletions.
		if lo == first {
			first = 0
			if k := t.first(raftLogsBucket, raftKey(hi)); k != nil {
				first = binary.BigEndian.Uint64(k)
			}
		}
		if hi == last {
			last = 0
			if k := t.last(raftLogsBucket, raftKey(lo)); k != nil {
				last = binary.BigEndian.Uint64(k)
			}
		}
		if first == 0 || last == 0 {
			first, last = 0, 0
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: delete raft logs %d to %d: %w", from, to, err)
	}
	s.first.Store(first)
	s.last.Store(last)
	return nil
}

// Set stores val under key in the stable bucket.
func (s *RaftStore) Set(key, val []byte) error {
	err := s.kv.update(func(t *tx) error {
		return t.Put(raftStableBucket, key, val)
	})
	if err != nil {
		return fmt.Errorf("bolt: set raft key %q: %w", key, err)
	}
	return nil
}

// Get returns a copy of the value under key, or ErrKeyNotFound.
func (s *RaftStore) Get(key []byte) ([]byte, error) {
	var val []byte
	err := s.kv.get(raftStableBucket, key, func(v []byte) error {
		if v != nil {
			// Non-nil even when empty, so that an empty value is found.
			val = append(make([]byte, 0, len(v)), v...)
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("bolt: get raft key %q: %w", key, err)
	case val == nil:
		// Unwrapped: raft compares the message, which wrapping changes.
		return nil, ErrKeyNotFound
	}
	return val, nil
}

func raftKey(index uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), index) }

// SetUint64 stores val under key as 8 big-endian bytes.
func (s *RaftStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the value SetUint64 stored under key, or
// ErrKeyNotFound.
func (s *RaftStore) GetUint64(key []byte) (uint64, error) {
	val, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(val) != 8 {
		return 0, fmt.Errorf("bolt: raft key %q holds %d bytes, not the 8 of a uint64: %s is corrupt or the key was written with Set", key, len(val), RaftFileName)
	}
	return binary.BigEndian.Uint64(val), nil
}

// A log is encoded as: version byte, Index and Term as uvarints, Type as
// one byte, AppendedAt as 8 big-endian bytes of UnixNano, then Data and
// Extensions each as a uvarint length and the bytes. The zero AppendedAt
// is encoded as 0, so the instant of the Unix epoch itself reads back as
// the zero time (raft stamps logs with the present, never with 1970).
const raftLogFixedLen = 1 + 1 + 8

func encodedRaftLogLen(l *raft.Log) int {
	return raftLogFixedLen + 4*binary.MaxVarintLen64 + len(l.Data) + len(l.Extensions)
}

func appendRaftLog(b []byte, l *raft.Log) []byte {
	b = append(b, raftLogVersion)
	b = binary.AppendUvarint(b, l.Index)
	b = binary.AppendUvarint(b, l.Term)
	b = append(b, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	return append(b, l.Extensions...)
}

// errRaftLogCorrupt is wrapped by decoding errors other than an unknown
// version.
var errRaftLogCorrupt = errors.New("corrupt raft log encoding")

// decodeRaftLog decodes v into l, copying Data and Extensions out of v.
func decodeRaftLog(v []byte, l *raft.Log) error {
	if len(v) == 0 {
		return fmt.Errorf("%w: empty value", errRaftLogCorrupt)
	}
	if v[0] != raftLogVersion {
		return fmt.Errorf("raft log encoding version %d is unknown (this warren reads version %d): if a newer warren wrote %s, upgrade this one", v[0], raftLogVersion, RaftFileName)
	}
	d := raftLogDecoder{p: v[1:]}
	var out raft.Log
	out.Index = d.uvarint()
	out.Term = d.uvarint()
	out.Type = raft.LogType(d.bytes(1)[0])
	if at := int64(binary.BigEndian.Uint64(d.bytes(8))); at != 0 {
		out.AppendedAt = time.Unix(0, at)
	}
	out.Data = d.chunk()
	out.Extensions = d.chunk()
	if d.err == nil && len(d.p) != 0 {
		d.err = fmt.Errorf("%w: %d bytes after the last field", errRaftLogCorrupt, len(d.p))
	}
	if d.err != nil {
		return d.err
	}
	*l = out
	return nil
}

// raftLogDecoder reads fields off p, keeping the first error; after an
// error its reads return zero values of the right length, so that callers
// check once at the end.
type raftLogDecoder struct {
	p   []byte
	err error
}

func (d *raftLogDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", errRaftLogCorrupt, what)
	}
	d.p = nil
}

func (d *raftLogDecoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.p = d.p[n:]
	return x
}

func (d *raftLogDecoder) bytes(n int) []byte {
	if len(d.p) < n {
		d.fail("field")
		return make([]byte, n)
	}
	b := d.p[:n]
	d.p = d.p[n:]
	return b
}

// chunk reads a length-prefixed byte string as a copy; empty reads as nil.
func (d *raftLogDecoder) chunk() []byte {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	if uint64(len(d.p)) < n {
		d.fail("byte string")
		return nil
	}
	b := append([]byte(nil), d.p[:n]...)
	d.p = d.p[n:]
	return b
}
