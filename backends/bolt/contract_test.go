package bolt_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/bolt"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/state/statetest"
)

func openKV(opts *bolt.Options) func() state.KV {
	return func() state.KV {
		kv, err := bolt.OpenKV(GinkgoT().TempDir(), opts)
		Expect(err).NotTo(HaveOccurred())
		return kv
	}
}

// Three checkpoint regimes, so that reads meet records in the memtable, in
// warren.db, and (most of the time, in the middle one) in both.
var (
	_ = statetest.DescribeStore("BoltDB", openKV(nil))
	_ = statetest.DescribeStore("BoltDB checkpointing every 4 KiB", openKV(&bolt.Options{CheckpointBytes: 4 << 10}))
	_ = statetest.DescribeStore("BoltDB checkpointing every write", openKV(&bolt.Options{CheckpointBytes: 1}))
	_ = statetest.DescribeStore("BoltDB without sync (the raft FSM's store)", openKV(&bolt.Options{NoSync: true, CheckpointBytes: 4 << 10}))
)
