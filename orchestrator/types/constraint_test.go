package types_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Constraint", func() {
	DescribeTable("matches nodes",
		func(expr string, want bool) {
			c, err := types.ParseConstraint(expr)
			Expect(err).NotTo(HaveOccurred())
			n := typestest.Node("node-1") // zone=a, worker, hostname node-1
			Expect(c.Matches(n)).To(Equal(want))
		},
		Entry("label ==", "node.labels.zone==a", true),
		Entry("label == other", "node.labels.zone==b", false),
		Entry("label !=", "node.labels.zone!=b", true),
		Entry("missing label ==", "node.labels.disk==ssd", false),
		Entry("missing label !=", "node.labels.disk!=ssd", true),
		Entry("role", "node.role==worker", true),
		Entry("role !=", "node.role!=worker", false),
		Entry("hostname", "node.hostname==node-1", true),
		Entry("id", "node.id == node-1", true),
	)

	DescribeTable("refuses what is not a constraint",
		func(expr, message string) {
			_, err := types.ParseConstraint(expr)
			Expect(err).To(MatchError(ContainSubstring(message)))
		},
		Entry("no operator", "node.labels.zone=a", "write ATTRIBUTE==VALUE"),
		Entry("no value", "node.labels.zone==", "write ATTRIBUTE==VALUE"),
		Entry("unknown attribute", "engine.labels.x==1", "unknown attribute"),
		Entry("empty label key", "node.labels.==a", "unknown attribute"),
	)

	It("makes a service with a bad constraint invalid", func() {
		s := typestest.Service("svc-1", "web")
		s.Constraints = []string{"node.labels.zone==a", "zone=a"}
		Expect(s.Validate()).To(MatchError(ContainSubstring("Constraints[1]")))
	})
})
