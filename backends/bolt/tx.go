package bolt

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/google/btree"
	bbolt "go.etcd.io/bbolt"
)

// tx is a transaction: the memtable laid over a read transaction of
// warren.db. A write transaction also collects its ops for the log.
type tx struct {
	db       *bbolt.Tx
	mem      *memtable
	writable bool
	cloned   map[string]bool
	ops      []op
}

var errReadOnly = errors.New("bolt: write in a read-only transaction")

func (t *tx) bucket(name string) (*bbolt.Bucket, error) {
	b := t.db.Bucket([]byte(name))
	if b == nil {
		return nil, fmt.Errorf("bolt: no bucket %q in this database", name)
	}
	return b, nil
}

func (t *tx) Get(bucket string, key []byte) []byte {
	if e, ok := t.mem.get(bucket, key); ok {
		if e.del {
			return nil
		}
		return e.value
	}
	b, err := t.bucket(bucket)
	if err != nil {
		return nil
	}
	return b.Get(key)
}

func (t *tx) Put(bucket string, key, value []byte) error {
	return t.write(opPut, bucket, key, value)
}

func (t *tx) Delete(bucket string, key []byte) error {
	return t.write(opDelete, bucket, key, nil)
}

func (t *tx) write(kind byte, bucket string, key, value []byte) error {
	return t.own(kind, bucket, bytes.Clone(key), bytes.Clone(value))
}

// own is write for a key and value the transaction may keep: the caller
// never changes them afterwards.
func (t *tx) own(kind byte, bucket string, key, value []byte) error {
	if !t.writable {
		return errReadOnly
	}
	if _, err := t.bucket(bucket); err != nil {
		return err
	}
	if len(key) == 0 {
		return errors.New("bolt: empty key")
	}
	if !t.cloned[bucket] {
		if tr := t.mem.trees[bucket]; tr != nil {
			t.mem.trees[bucket] = tr.Clone()
		} else {
			t.mem.trees[bucket] = btree.NewG(32, lessEntry)
		}
		t.cloned[bucket] = true
	}
	o := op{kind: kind, bucket: bucket, key: key, value: value}
	t.mem.trees[bucket].ReplaceOrInsert(entry{key: o.key, value: o.value, del: kind == opDelete})
	t.mem.size += int64(len(o.key) + len(o.value))
	t.ops = append(t.ops, o)
	return nil
}

// Scan merges the memtable's entries with warren.db's keys in key order;
// a memtable entry hides the file's entry for the same key.
func (t *tx) Scan(bucket string, prefix []byte, fn func(k, v []byte) error) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	c := b.Cursor()
	k, v := c.Seek(prefix)
	inPrefix := func() bool { return k != nil && bytes.HasPrefix(k, prefix) }
	// fileBefore emits the file's keys below limit (all of them if nil).
	fileBefore := func(limit []byte) error {
		for inPrefix() && (limit == nil || bytes.Compare(k, limit) < 0) {
			if err := fn(k, v); err != nil {
				return err
			}
			k, v = c.Next()
		}
		return nil
	}
	if tr := t.mem.trees[bucket]; tr != nil {
		tr.AscendGreaterOrEqual(entry{key: prefix}, func(e entry) bool {
			if !bytes.HasPrefix(e.key, prefix) {
				return false
			}
			if err = fileBefore(e.key); err != nil {
				return false
			}
			if inPrefix() && bytes.Equal(k, e.key) {
				k, v = c.Next()
			}
			if !e.del {
				err = fn(e.key, e.value)
			}
			return err == nil
		})
		if err != nil {
			return err
		}
	}
	return fileBefore(nil)
}

// first returns the smallest key at or after from that the transaction
// sees, nil when there is none. The key is valid only during the
// transaction.
func (t *tx) first(bucket string, from []byte) []byte {
	var mk []byte // the memtable's smallest live key at or after from
	if tr := t.mem.trees[bucket]; tr != nil {
		tr.AscendGreaterOrEqual(entry{key: from}, func(e entry) bool {
			if e.del {
				return true
			}
			mk = e.key
			return false
		})
	}
	b, err := t.bucket(bucket)
	if err != nil {
		return mk
	}
	c := b.Cursor()
	for k, _ := c.Seek(from); k != nil && (mk == nil || bytes.Compare(k, mk) < 0); k, _ = c.Next() {
		if e, ok := t.mem.get(bucket, k); !ok || !e.del {
			return k
		}
	}
	return mk
}

// last returns the largest key before before (of all, if before is nil)
// that the transaction sees, nil when there is none. The key is valid only
// during the transaction.
func (t *tx) last(bucket string, before []byte) []byte {
	var mk []byte // the memtable's largest live key before before
	if tr := t.mem.trees[bucket]; tr != nil {
		visit := func(e entry) bool {
			if e.del || (before != nil && bytes.Equal(e.key, before)) {
				return true
			}
			mk = e.key
			return false
		}
		if before == nil {
			tr.Descend(visit)
		} else {
			tr.DescendLessOrEqual(entry{key: before}, visit)
		}
	}
	b, err := t.bucket(bucket)
	if err != nil {
		return mk
	}
	c := b.Cursor()
	var k []byte
	if before == nil {
		k, _ = c.Last()
	} else if k, _ = c.Seek(before); k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for ; k != nil && (mk == nil || bytes.Compare(k, mk) > 0); k, _ = c.Prev() {
		if e, ok := t.mem.get(bucket, k); !ok || !e.del {
			return k
		}
	}
	return mk
}
