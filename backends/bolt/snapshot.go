package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bbolt "go.etcd.io/bbolt"

	"github.com/warren-orchestrator/warren/orchestrator/state"
)

// Snapshot is a consistent copy of the store as of the moment it was taken,
// readable while writes go on. It holds a BoltDB read transaction: release
// it with Close.
type Snapshot struct {
	btx *bbolt.Tx
}

// Snapshot checkpoints the memtable into warren.db (so the file holds every
// commit so far) and pins that state. Writes continue meanwhile; they land
// in the memtable and later checkpoints, never in the pinned pages.
func (kv *KV) Snapshot() (*Snapshot, error) {
	kv.writer.Lock()
	defer kv.writer.Unlock()
	if kv.closed.Load() {
		return nil, state.ErrClosed
	}
	if kv.failed != nil {
		return nil, kv.failed
	}
	if err := kv.checkpoint(); err != nil {
		kv.failed = err
		return nil, err
	}
	btx, err := kv.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("bolt: snapshot: %w", err)
	}
	return &Snapshot{btx: btx}, nil
}

// Size is the snapshot's length in bytes.
func (s *Snapshot) Size() int64 { return s.btx.Size() }

// Meta returns a copy of the value of key in the meta bucket as of the
// snapshot, nil when absent.
func (s *Snapshot) Meta(key string) []byte {
	b := s.btx.Bucket([]byte(MetaBucket))
	if b == nil {
		return nil
	}
	return bytes.Clone(b.Get([]byte(key)))
}

// WriteTo writes the snapshot as a complete BoltDB file: a warren.db that
// `bbolt` can read and Restore can load.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := s.btx.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("bolt: write snapshot: %w", err)
	}
	return n, nil
}

// Close releases the snapshot.
func (s *Snapshot) Close() error { return s.btx.Rollback() }

// Restore replaces everything the store holds with the content of a
// snapshot (a warren.db file as Snapshot.WriteTo writes it). The snapshot is
// first copied next to warren.db and checked, so a truncated or foreign
// stream changes nothing; the replacement is then one BoltDB transaction,
// so a crash leaves either the old content or the new.
func (kv *KV) Restore(r io.Reader) error {
	dir := filepath.Dir(kv.db.Path())
	tmp, err := os.CreateTemp(dir, kv.layout.file+".restore-*")
	if err != nil {
		return fmt.Errorf("bolt: restore: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, r)
	if err == nil {
		err = tmp.Sync()
	}
	if e := tmp.Close(); err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("bolt: restore: copy the snapshot: %w", err)
	}
	if err := check(tmp.Name(), kv.layout); err != nil {
		return fmt.Errorf("bolt: restore: the snapshot is not usable: %w", err)
	}
	src, err := bbolt.Open(tmp.Name(), 0o600, &bbolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("bolt: restore: %w", openError(tmp.Name(), err))
	}
	defer src.Close()

	kv.writer.Lock()
	defer kv.writer.Unlock()
	if kv.closed.Load() {
		return state.ErrClosed
	}
	if kv.failed != nil {
		return kv.failed
	}
	// What the memtable holds is about to be replaced: the new content is
	// recorded as applied up to the memtable's sequence, so the log's
	// records are stale however far the reset below gets.
	seq := kv.mem.Load().seq
	err = src.View(func(stx *bbolt.Tx) error {
		if stx.Bucket([]byte(metaBucket)) == nil {
			return fmt.Errorf("%w: the snapshot has no %q bucket", ErrNotWarren, metaBucket)
		}
		return kv.db.Update(func(btx *bbolt.Tx) error {
			for _, name := range kv.layout.buckets {
				if err := replaceBucket(btx, stx, name); err != nil {
					return err
				}
			}
			if err := replaceMeta(btx, stx); err != nil {
				return err
			}
			return btx.Bucket([]byte(metaBucket)).Put([]byte(metaApplied), binary.BigEndian.AppendUint64(nil, seq))
		})
	})
	if err != nil {
		return fmt.Errorf("bolt: restore into %s: %w", kv.layout.file, err)
	}
	kv.mem.Store(newMemtable(seq))
	if err := kv.wal.reset(); err != nil {
		kv.failed = err
		return err
	}
	return nil
}

func replaceBucket(dst, src *bbolt.Tx, name string) error {
	if err := dst.DeleteBucket([]byte(name)); err != nil && !errors.Is(err, bbolt.ErrBucketNotFound) {
		return err
	}
	b, err := dst.CreateBucket([]byte(name))
	if err != nil {
		return err
	}
	from := src.Bucket([]byte(name))
	if from == nil {
		return nil // a snapshot from before this bucket existed
	}
	return from.ForEach(func(k, v []byte) error { return b.Put(k, v) })
}

// replaceMeta carries over the meta keys that describe the content (the
// schema and the owner's keys), not the ones that describe this file's log.
func replaceMeta(dst, src *bbolt.Tx) error {
	to := dst.Bucket([]byte(metaBucket))
	keep := map[string]bool{metaFormat: true, metaApplied: true}
	var stale [][]byte
	if err := to.ForEach(func(k, _ []byte) error {
		if !keep[string(k)] {
			stale = append(stale, k)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range stale {
		if err := to.Delete(k); err != nil {
			return err
		}
	}
	return src.Bucket([]byte(metaBucket)).ForEach(func(k, v []byte) error {
		if keep[string(k)] {
			return nil
		}
		return to.Put(k, v)
	})
}
