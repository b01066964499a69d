package state

import "github.com/warren-orchestrator/warren/orchestrator/types"

// txn is the typed view of one KV transaction; it implements Tx.
type txn struct{ kv KVTx }

// ListContainersByService implements Reader.
func (t txn) ListContainersByService(serviceID string) ([]*types.Container, error) {
	return containers.listRefs(t.kv, byService, serviceID)
}

// ListContainersByNode implements Reader.
func (t txn) ListContainersByNode(nodeID string) ([]*types.Container, error) {
	return containers.listRefs(t.kv, byNode, nodeID)
}

// ListContainersByService implements Reader.
func (s *store) ListContainersByService(serviceID string) ([]*types.Container, error) {
	return read(s, func(t txn) ([]*types.Container, error) { return t.ListContainersByService(serviceID) })
}

// ListContainersByNode implements Reader.
func (s *store) ListContainersByNode(nodeID string) ([]*types.Container, error) {
	return read(s, func(t txn) ([]*types.Container, error) { return t.ListContainersByNode(nodeID) })
}

// read runs fn in a read-only transaction of its own.
func read[R any](s *store, fn func(txn) (R, error)) (R, error) {
	var out R
	err := s.kv.View(func(tx KVTx) error {
		var err error
		out, err = fn(txn{tx})
		return err
	})
	return out, err
}

// writeOne runs a single write, through group commit where the KV has it.
// Every single write refuses before its first change, as Batch requires.
func (s *store) writeOne(fn func(txn) error) error {
	return s.write(func(tx KVTx) error { return fn(txn{tx}) })
}

// View implements Store.
func (s *store) View(fn func(Reader) error) error {
	return s.kv.View(func(tx KVTx) error { return fn(txn{tx}) })
}

// Update implements Store.
func (s *store) Update(fn func(Tx) error) error {
	return s.kv.Update(func(tx KVTx) error { return fn(txn{tx}) })
}

// Close implements Store.
func (s *store) Close() error { return s.kv.Close() }

// TxOf is the typed view of a KV transaction, for a caller that writes
// more than records in the same transaction (the raft FSM records the log
// index it applied alongside the command's changes).
func TxOf(tx KVTx) Tx { return txn{tx} }
