package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// RaftFileName is the raft log and stable store file in the data directory.
const RaftFileName = "raft.db"

const (
	raftLogsBucket   = "logs"
	raftStableBucket = "stable"
	// raftLogVersion is the first byte of every encoded log; a value this
	// binary does not know is refused rather than misread.
	raftLogVersion byte = 1
	// raftLockTimeout is how long OpenRaftStore waits for another process's
	// lock on raft.db before giving up with ErrRaftLocked.
	raftLockTimeout = time.Second
)

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

// RaftStore is raft's LogStore and StableStore on raft.db. Every write is
// one fsynced bbolt transaction, so a write raft was told succeeded
// survives kill -9 and power loss. It is safe for concurrent use.
type RaftStore struct {
	db *bbolt.DB
}

// OpenRaftStore opens (or creates) dataDir/raft.db, making the directory
// 0700 and the file 0600. It fails with ErrRaftLocked, after a short wait,
// when another process has the file open.
func OpenRaftStore(dataDir string) (*RaftStore, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("bolt: create data directory: %w", err)
	}
	path := filepath.Join(dataDir, RaftFileName)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		// Without a timeout a second opener would block forever on the
		// file lock.
		Timeout: raftLockTimeout,
		// Every commit writes fewer pages when the free list is rebuilt on
		// open instead of written each time; the fsync of each commit is
		// unaffected.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("%w (data directory %s); stop it first", ErrRaftLocked, dataDir)
		}
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range []string{raftLogsBucket, raftStableBucket} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		// bbolt.Open's mode applies only to a file it creates.
		err = secure(dataDir, path)
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: initialise %s: %w", path, err)
	}
	return &RaftStore{db: db}, nil
}

// Close closes raft.db; the store must not be used afterwards.
func (s *RaftStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close %s: %w", RaftFileName, err)
	}
	return nil
}

// FirstIndex returns the lowest index stored, or 0 when there is none.
func (s *RaftStore) FirstIndex() (uint64, error) {
	return s.edgeIndex((*bbolt.Cursor).First)
}

// LastIndex returns the highest index stored, or 0 when there is none.
func (s *RaftStore) LastIndex() (uint64, error) {
	return s.edgeIndex((*bbolt.Cursor).Last)
}

// edgeIndex reads one end of the logs bucket: keys are big-endian, so
// cursor order is index order and neither end needs a scan.
func (s *RaftStore) edgeIndex(end func(*bbolt.Cursor) ([]byte, []byte)) (uint64, error) {
	var index uint64
	err := s.db.View(func(tx *bbolt.Tx) error {
		if k, _ := end(tx.Bucket([]byte(raftLogsBucket)).Cursor()); k != nil {
			index = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: read raft log index: %w", err)
	}
	return index, nil
}

// GetLog reads the log at index into log. A missing index gives
// raft.ErrLogNotFound itself, unwrapped: raft compares it with ==.
func (s *RaftStore) GetLog(index uint64, log *raft.Log) error {
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], index)
	found := false
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket([]byte(raftLogsBucket)).Get(key[:])
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
	// bbolt keeps the key and value slices until commit, so every log gets
	// its own part of two buffers: two allocations per batch, not per log.
	size := 0
	for _, l := range logs {
		size += encodedRaftLogLen(l)
	}
	keys := make([]byte, 0, 8*len(logs))
	values := make([]byte, 0, size)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(raftLogsBucket))
		// raft appends at the tail (after truncating it on a conflict),
		// so full pages are never split by a later insert.
		b.FillPercent = 1.0
		for _, l := range logs {
			k := len(keys)
			keys = binary.BigEndian.AppendUint64(keys, l.Index)
			v := len(values)
			values = appendRaftLog(values, l)
			if err := b.Put(keys[k:], values[v:]); err != nil {
				return fmt.Errorf("log %d: %w", l.Index, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: store raft logs: %w", err)
	}
	return nil
}

// DeleteRange deletes the logs from min to max, both included, in one
// transaction.
func (s *RaftStore) DeleteRange(min, max uint64) error {
	if min > max {
		return nil
	}
	var from [8]byte
	binary.BigEndian.PutUint64(from[:], min)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		c := tx.Bucket([]byte(raftLogsBucket)).Cursor()
		// Seeking again after each Delete, rather than calling Next,
		// cannot skip a key whatever the cursor does on deletion; the
		// keys are deleted in order, so each seek lands on the next one.
		for k, _ := c.Seek(from[:]); k != nil && binary.BigEndian.Uint64(k) <= max; k, _ = c.Seek(from[:]) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: delete raft logs %d to %d: %w", min, max, err)
	}
	return nil
}

// Set stores val under key in the stable bucket.
func (s *RaftStore) Set(key, val []byte) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(raftStableBucket)).Put(key, val)
	})
	if err != nil {
		return fmt.Errorf("bolt: set raft key %q: %w", key, err)
	}
	return nil
}

// Get returns a copy of the value under key, or ErrKeyNotFound.
func (s *RaftStore) Get(key []byte) ([]byte, error) {
	var val []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket([]byte(raftStableBucket)).Get(key); v != nil {
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
