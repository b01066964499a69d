// Package bolt is Warren's state store on BoltDB (go.etcd.io/bbolt): the
// file warren.db in the data directory, holding the six record buckets of
// the schema document, the index buckets of package state and a meta bucket
// that marks the file as Warren's. Every commit is fsynced; concurrent
// single writes share commits (group commit).
package bolt
