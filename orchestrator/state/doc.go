// Package state is Warren's cluster state: the Store interface with the
// access patterns of the schema document, a typed Store built on any ordered
// key-value store (KV) with the secondary indexes kept in the same
// transaction, and an in-memory KV with deterministic iteration order.
//
// backends/bolt supplies the KV on BoltDB; the simulator uses NewMemory.
// Both run the same typed code, so they index, validate and migrate alike.
package state
