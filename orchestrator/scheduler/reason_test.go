package scheduler_test

import (
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/scheduler"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Place reasons", func() {
	var (
		cluster scheduler.Cluster
		svc     *types.Service
		task    *types.Container
	)
	BeforeEach(func() {
		svc = typestest.Service(svcID, "web")
		svc.Constraints = []string{"node.labels.zone==a", "node.role==worker"}
		task = reserving(1, 1<<30, publishing(8080, types.ProtocolTCP, types.PublishHost, pending(1)...)...)[0]
		ns := nodes("n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9")
		ns[0].Status = types.NodeDown
		ns[1].Availability = types.NodeDrain
		ns[2].Availability = types.NodePause
		ns[3].Labels["zone"] = "b"
		ns[4].Role = types.RoleManager
		ns[5].Labels = nil
		ns[6].Resources.MemoryBytes = 512 << 20
		ns[7].Resources.MemoryBytes = 768 << 20
		cluster = scheduler.Cluster{
			Nodes: ns,
			// Down and refused by a constraint too: each node counts once,
			// under the first filter that refuses it.
			Tasks: publishing(8080, types.ProtocolTCP, "", running(1, "x", "svc-2", "n9")...),
		}
		ns[0].Labels["zone"] = "b"
	})

	When("every node is refused", func() {
		It("counts the nodes per filter, in pipeline order, each once", func() {
			p := scheduler.Place(cluster, svc, []*types.Container{task})[0]
			Expect(p.NodeID).To(BeEmpty())
			Expect(p.Reason).To(Equal("no suitable node (9 nodes): 1 not ready, 2 drained or paused, " +
				"2 do not match node.labels.zone==a, 1 does not match node.role==worker, " +
				"2 with insufficient memory (needs 1 GiB, most free 768 MiB), 1 with host port 8080/tcp in use"))
		})

		It("reads the same whatever the order of the nodes", func() {
			want := scheduler.Place(cluster, svc, []*types.Container{task})[0].Reason
			slices.Reverse(cluster.Nodes)
			Expect(scheduler.Place(cluster, svc, []*types.Container{task})[0].Reason).To(Equal(want))
		})
	})

	When("one node is left and a task placed earlier in the call takes its port", func() {
		It("places the first and counts its port against the second", func() {
			cluster.Nodes = append(cluster.Nodes, typestest.Node("n10"))
			second := reserving(1, 1<<30, publishing(8080, types.ProtocolTCP, types.PublishHost, typestest.Container("t2", svcID, ""))...)[0]
			ps := scheduler.Place(cluster, svc, []*types.Container{task, second})
			Expect(nodeIDs(ps)).To(Equal([]string{"n10", ""}))
			Expect(ps[1].Reason).To(Equal("no suitable node (10 nodes): 1 not ready, 2 drained or paused, " +
				"2 do not match node.labels.zone==a, 1 does not match node.role==worker, " +
				"2 with insufficient memory (needs 1 GiB, most free 768 MiB), 2 with host port 8080/tcp in use"))
		})
	})
})
