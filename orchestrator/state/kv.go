package state

import "github.com/warren-orchestrator/warren/orchestrator/types"

// KV is an ordered key-value store with named buckets and serializable
// transactions: the part of a database the typed Store needs.
type KV interface {
	// View runs fn in a read-only transaction.
	View(fn func(KVTx) error) error
	// Update runs fn in a read-write transaction and commits it if fn
	// returns nil; otherwise it rolls it back.
	Update(fn func(KVTx) error) error
	Close() error
}

// Batcher is an optional capability of a KV: group commit. Batch behaves
// like Update, except that concurrent calls may share one transaction and
// one commit, and fn may run more than once (so it must only read and write
// through the transaction). A failing fn does not fail the others.
type Batcher interface {
	Batch(fn func(KVTx) error) error
}

// KVTx is a transaction on a KV. Buckets are the ones named by Buckets.
type KVTx interface {
	// Get returns the value stored under key, or nil. The slice is valid
	// until the transaction ends and must not be modified.
	Get(bucket string, key []byte) []byte
	// Put stores value under key.
	Put(bucket string, key, value []byte) error
	// Delete removes key; a missing key is not an error.
	Delete(bucket string, key []byte) error
	// Scan calls fn for every key that starts with prefix, in key order,
	// until fn returns an error.
	Scan(bucket string, prefix []byte, fn func(key, value []byte) error) error
}

// Index bucket names. The by-name buckets map a name to an ID; the
// by-service and by-node buckets hold one key per container,
// "<serviceID or nodeID>\x00<containerID>", whose value is the container ID.
const (
	ServicesByName      = "services_by_name"
	SecretsByName       = "secrets_by_name"
	VolumesByName       = "volumes_by_name"
	NetworksByName      = "networks_by_name"
	ContainersByService = "containers_by_service"
	ContainersByNode    = "containers_by_node"
)

// Buckets lists every bucket the typed Store uses: a record bucket per
// kind (types.Kinds), then the index buckets.
func Buckets() []string {
	var b []string
	for _, k := range types.Kinds {
		b = append(b, k.Bucket())
	}
	return append(b, ServicesByName, SecretsByName, VolumesByName, NetworksByName, ContainersByService, ContainersByNode)
}
