package bolt_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/bolt"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/state/statetest"
)

var _ = statetest.DescribeStore("BoltDB", func() state.KV {
	kv, err := bolt.OpenKV(GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred())
	return kv
})
