package state

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/google/btree"
)

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("state: store is closed")

// NewMemory returns a Store that keeps everything in memory. Iteration is
// in key order, so the same writes always list the same way: the simulator
// depends on it.
func NewMemory() Store { return New(newMemKV()) }

// NewMemoryKV returns the in-memory KV behind NewMemory.
func NewMemoryKV() KV { return newMemKV() }

type memItem struct {
	key, value []byte
	// dec holds the value's decoded record once it has been read; it is
	// shared by the trees' clones, as the value is, and never changes
	// after it is set.
	dec *decoded
}

func lessItem(a, b memItem) bool { return bytes.Compare(a.key, b.key) < 0 }

type memTree = btree.BTreeG[memItem]

// memKV keeps one copy-on-write B-tree per bucket. Readers use the trees
// of the last commit and never block; a writer clones the trees it touches
// (cheaply: the clone shares nodes until they are written) and publishes
// them on commit.
type memKV struct {
	writer  sync.Mutex
	current atomic.Pointer[map[string]*memTree]
	closed  atomic.Bool
}

func newMemKV() *memKV {
	m := map[string]*memTree{}
	for _, b := range Buckets() {
		m[b] = btree.NewG(8, lessItem)
	}
	kv := &memKV{}
	kv.current.Store(&m)
	return kv
}

func (kv *memKV) View(fn func(KVTx) error) error {
	if kv.closed.Load() {
		return ErrClosed
	}
	return fn(&memTx{trees: *kv.current.Load()})
}

func (kv *memKV) Update(fn func(KVTx) error) error {
	kv.writer.Lock()
	defer kv.writer.Unlock()
	if kv.closed.Load() {
		return ErrClosed
	}
	tx := &memTx{trees: *kv.current.Load(), writable: true}
	if err := fn(tx); err != nil {
		return err
	}
	if tx.cloned != nil {
		next := make(map[string]*memTree, len(tx.trees))
		for name, t := range tx.trees {
			next[name] = t
		}
		for name, t := range tx.cloned {
			next[name] = t
		}
		kv.current.Store(&next)
	}
	return nil
}

func (kv *memKV) Close() error {
	kv.closed.Store(true)
	return nil
}

type memTx struct {
	trees    map[string]*memTree // as of the start of the transaction
	cloned   map[string]*memTree // buckets this transaction has written
	writable bool
}

func (tx *memTx) tree(bucket string) *memTree {
	if t, ok := tx.cloned[bucket]; ok {
		return t
	}
	return tx.trees[bucket]
}

func (tx *memTx) writeTree(bucket string) (*memTree, error) {
	if !tx.writable {
		return nil, errors.New("state: write in a read-only transaction")
	}
	if t, ok := tx.cloned[bucket]; ok {
		return t, nil
	}
	t, ok := tx.trees[bucket]
	if !ok {
		return nil, fmt.Errorf("state: no bucket %q", bucket)
	}
	if tx.cloned == nil {
		tx.cloned = map[string]*memTree{}
	}
	c := t.Clone()
	tx.cloned[bucket] = c
	return c, nil
}

func (tx *memTx) Get(bucket string, key []byte) []byte {
	v, _ := tx.getDecoded(bucket, key)
	return v
}

func (tx *memTx) Put(bucket string, key, value []byte) error {
	t, err := tx.writeTree(bucket)
	if err != nil {
		return err
	}
	t.ReplaceOrInsert(memItem{key: bytes.Clone(key), value: bytes.Clone(value), dec: &decoded{}})
	return nil
}

func (tx *memTx) Delete(bucket string, key []byte) error {
	t, err := tx.writeTree(bucket)
	if err != nil {
		return err
	}
	t.Delete(memItem{key: key})
	return nil
}

func (tx *memTx) Scan(bucket string, prefix []byte, fn func(k, v []byte) error) error {
	return tx.scanDecoded(bucket, prefix, func(k, v []byte, _ *decoded) error { return fn(k, v) })
}

// getDecoded implements decodedValues.
func (tx *memTx) getDecoded(bucket string, key []byte) ([]byte, *decoded) {
	t := tx.tree(bucket)
	if t == nil {
		return nil, nil
	}
	it, ok := t.Get(memItem{key: key})
	if !ok {
		return nil, nil
	}
	return it.value, it.dec
}

// scanDecoded implements decodedValues.
func (tx *memTx) scanDecoded(bucket string, prefix []byte, fn func(k, v []byte, d *decoded) error) error {
	t := tx.tree(bucket)
	if t == nil {
		return fmt.Errorf("state: no bucket %q", bucket)
	}
	var err error
	t.AscendGreaterOrEqual(memItem{key: prefix}, func(it memItem) bool {
		if !bytes.HasPrefix(it.key, prefix) {
			return false
		}
		err = fn(it.key, it.value, it.dec)
		return err == nil
	})
	return err
}
