package bolt

import (
	"bytes"
	"fmt"
	"sync"

	bbolt "go.etcd.io/bbolt"

	"github.com/warren-orchestrator/warren/orchestrator/state"
)

// maxBatch bounds how many single writes share one commit, so that one
// commit's latency stays bounded under heavy load.
const maxBatch = 256

// KV is state.KV on a BoltDB file. It implements state.Batcher: single
// writes that arrive while a commit is in flight are committed together in
// the next transaction, with one pair of fsyncs for all of them and no added
// delay for a lone writer.
type KV struct {
	db      *bbolt.DB
	reqs    chan *batchReq
	closing chan struct{}
	stopped chan struct{}
	once    sync.Once
}

type batchReq struct {
	fn  func(state.KVTx) error
	err chan error
}

func newKV(db *bbolt.DB) *KV {
	kv := &KV{
		db:      db,
		reqs:    make(chan *batchReq),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go kv.commitLoop()
	return kv
}

// View implements state.KV.
func (kv *KV) View(fn func(state.KVTx) error) error {
	return kv.db.View(func(tx *bbolt.Tx) error { return fn(boltTx{tx}) })
}

// Update implements state.KV.
func (kv *KV) Update(fn func(state.KVTx) error) error {
	return kv.db.Update(func(tx *bbolt.Tx) error { return fn(boltTx{tx}) })
}

// Batch implements state.Batcher.
func (kv *KV) Batch(fn func(state.KVTx) error) error {
	r := &batchReq{fn: fn, err: make(chan error, 1)}
	select {
	case kv.reqs <- r:
		return <-r.err
	case <-kv.closing:
		return state.ErrClosed
	}
}

// Close waits for the commit in flight, then closes the file.
func (kv *KV) Close() error {
	var err error
	kv.once.Do(func() {
		close(kv.closing)
		<-kv.stopped
		err = kv.db.Close()
	})
	return err
}

func (kv *KV) commitLoop() {
	defer close(kv.stopped)
	for {
		select {
		case r := <-kv.reqs:
			batch := []*batchReq{r}
		more:
			for len(batch) < maxBatch {
				select {
				case r := <-kv.reqs:
					batch = append(batch, r)
				default:
					break more
				}
			}
			kv.commit(batch)
		case <-kv.closing:
			return
		}
	}
}

// commit runs the batch in one transaction. A write that fails is answered
// with its error and the transaction is retried without it: the failure
// rolled back the others' changes too, and each of them, run again from the
// same state, does the same thing.
func (kv *KV) commit(batch []*batchReq) {
	for len(batch) > 0 {
		failed, failure := -1, error(nil)
		err := kv.db.Update(func(tx *bbolt.Tx) error {
			for i, r := range batch {
				if err := r.fn(boltTx{tx}); err != nil {
					failed, failure = i, err
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, r := range batch {
				r.err <- err
			}
			return
		}
		batch[failed].err <- failure
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}

// boltTx adapts a bbolt transaction to state.KVTx.
type boltTx struct{ tx *bbolt.Tx }

func (t boltTx) bucket(name string) (*bbolt.Bucket, error) {
	b := t.tx.Bucket([]byte(name))
	if b == nil {
		return nil, fmt.Errorf("bolt: no bucket %q in this database", name)
	}
	return b, nil
}

func (t boltTx) Get(bucket string, key []byte) []byte {
	b, err := t.bucket(bucket)
	if err != nil {
		return nil
	}
	return b.Get(key)
}

func (t boltTx) Put(bucket string, key, value []byte) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Put(key, value)
}

func (t boltTx) Delete(bucket string, key []byte) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Delete(key)
}

func (t boltTx) Scan(bucket string, prefix []byte, fn func(k, v []byte) error) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}
