package bolt

import (
	"bytes"

	"github.com/google/btree"
)

// entry is a key's newest value in the memtable; del marks a deletion.
type entry struct {
	key, value []byte
	del        bool
}

func lessEntry(a, b entry) bool { return bytes.Compare(a.key, b.key) < 0 }

type tree = btree.BTreeG[entry]

// memtable holds the writes that are in the write-ahead log but not yet in
// warren.db, one copy-on-write B-tree per bucket. A published memtable is
// never changed: a writer works on a copy (trees are cloned lazily, sharing
// nodes until written) and publishes it when its record is durable.
type memtable struct {
	trees map[string]*tree
	// base is the sequence of the last record already in warren.db when
	// this memtable began; seq is the last record it holds.
	base, seq uint64
	// size is roughly how many bytes of keys and values it holds: the
	// checkpoint trigger.
	size int64
}

func newMemtable(seq uint64) *memtable {
	return &memtable{trees: map[string]*tree{}, base: seq, seq: seq}
}

// working returns a copy for a write transaction to change.
func (m *memtable) working() *memtable {
	c := *m
	c.trees = make(map[string]*tree, len(m.trees))
	for name, t := range m.trees {
		c.trees[name] = t
	}
	return &c
}

// get returns the memtable's entry for key, if it has one.
func (m *memtable) get(bucket string, key []byte) (entry, bool) {
	t := m.trees[bucket]
	if t == nil {
		return entry{}, false
	}
	return t.Get(entry{key: key})
}
