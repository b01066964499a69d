// Package bolt is Warren's storage on BoltDB (go.etcd.io/bbolt). warren.db
// in the data directory holds the record buckets of the schema
// document, the index buckets of package state and a meta bucket that marks
// the file as Warren's; commits go through a write-ahead log (warren.wal)
// and concurrent single writes share commits (group commit). raft.db holds
// a manager's raft log and raft's own small state (RaftStore): a second
// store of the same kind, whose write-ahead log (raft.wal) makes every
// append durable with one fdatasync.
package bolt
