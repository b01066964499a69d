package scheduler_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/scheduler"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Place with volumes", func() {
	var (
		cluster scheduler.Cluster
		svc     *types.Service
		tasks   []*types.Container
		placed  []scheduler.Placement
	)
	BeforeEach(func() {
		// n1 is the busiest node, so only a pin sends tasks there.
		cluster = scheduler.Cluster{Nodes: nodes("n1", "n2", "n3"), Tasks: running(4, "db", "svc-2", "n1")}
		svc = typestest.Service(svcID, "web")
		mounting(svc, "db-data")
		tasks = pending(3)
	})
	JustBeforeEach(func() {
		before := snapshot(cluster, svc, tasks)
		placed = scheduler.Place(cluster, svc, tasks)
		Expect(snapshot(cluster, svc, tasks)).To(Equal(before), "Place must not mutate its inputs")
	})

	When("a local volume is on a node", func() {
		BeforeEach(func() { cluster.Volumes = []*types.Volume{typestest.Volume("v1", "db-data", "n1")} })

		It("places every task there, though other nodes are emptier, and pins nothing", func() {
			Expect(nodeIDs(placed)).To(Equal([]string{"n1", "n1", "n1"}))
			for _, p := range placed {
				Expect(p.PinVolumes).To(BeEmpty())
			}
		})
	})

	DescribeTable("a local volume on a node that cannot take the task makes it unplaceable",
		func(change func(*scheduler.Cluster), reason string) {
			c := scheduler.Cluster{Nodes: nodes("n1", "n2"), Volumes: []*types.Volume{typestest.Volume("v1", "db-data", "n1")}}
			change(&c)
			p := scheduler.Place(c, svc, reserving(1, 0, pending(1)...))[0]
			Expect(p.NodeID).To(BeEmpty())
			Expect(p.Reason).To(Equal(reason))
		},
		Entry("down", func(c *scheduler.Cluster) { c.Nodes[0].Status = types.NodeDown },
			"volume db-data is on node n1, which is down"),
		Entry("paused", func(c *scheduler.Cluster) { c.Nodes[0].Availability = types.NodePause },
			"volume db-data is on node n1, which is paused"),
		Entry("gone", func(c *scheduler.Cluster) { c.Nodes = c.Nodes[1:] },
			"volume db-data is on node n1, which is not in the cluster"),
		Entry("no nodes at all", func(c *scheduler.Cluster) { c.Nodes = nil }, "no nodes in the cluster"),
		Entry("full", func(c *scheduler.Cluster) { c.Nodes[0].Resources.CPUCores = 0 },
			"volume db-data is on node n1, which has insufficient CPU (needs 1 core, free 0 cores)"),
	)

	When("a local volume does not exist yet", func() {
		BeforeEach(func() { tasks[0].CreatedAt = typestest.Epoch.Add(42) })

		It("creates it on the first task's node and places every replica there", func() {
			Expect(placed[0].NodeID).NotTo(BeEmpty())
			Expect(nodeIDs(placed)).To(HaveEach(placed[0].NodeID))
			Expect(placed[0].PinVolumes).To(Equal([]*types.Volume{{
				ID: "vol-db-data", Name: "db-data", Driver: "local", NodeID: placed[0].NodeID,
				MountPath: "/var/lib/warren/volumes/db-data", Options: map[string]string{},
				CreatedAt: tasks[0].CreatedAt,
			}}))
			Expect(placed[0].PinVolumes[0].Validate()).To(Succeed())
			Expect(placed[1].PinVolumes).To(BeEmpty())
			Expect(placed[2].PinVolumes).To(BeEmpty())
		})
	})

	When("a local volume exists with no node", func() {
		BeforeEach(func() {
			v := typestest.Volume("v1", "db-data", "")
			v.Options = map[string]string{"size": "10G"}
			cluster.Volumes = []*types.Volume{v}
		})

		It("pins a copy to the first task's node and places every replica there", func() {
			Expect(nodeIDs(placed)).To(HaveEach(placed[0].NodeID))
			want := *cluster.Volumes[0]
			want.NodeID = placed[0].NodeID
			Expect(placed[0].PinVolumes).To(Equal([]*types.Volume{&want}))
			Expect(placed[0].PinVolumes[0]).NotTo(BeIdenticalTo(cluster.Volumes[0]))
			Expect(cluster.Volumes[0].NodeID).To(BeEmpty())
		})
	})

	When("the task cannot be placed and its volume does not exist", func() {
		BeforeEach(func() { svc.Constraints = []string{"node.labels.zone==b"} })

		It("pins nothing", func() {
			for _, p := range placed {
				Expect(p.NodeID).To(BeEmpty())
				Expect(p.PinVolumes).To(BeNil())
			}
		})
	})

	When("two mounted volumes are on different nodes", func() {
		BeforeEach(func() {
			mounting(svc, "logs")
			cluster.Volumes = []*types.Volume{typestest.Volume("v1", "db-data", "n1"), typestest.Volume("v2", "logs", "n2")}
		})

		It("refuses every task, naming both volumes and nodes", func() {
			Expect(nodeIDs(placed)).To(HaveEach(""))
			Expect(reasons(placed)).To(HaveEach(HavePrefix("volumes db-data and logs are on different nodes: n1 and n2")))
		})
	})

	When("two mounted volumes are on the same node, and a third has none", func() {
		BeforeEach(func() {
			mounting(svc, "logs", "cache")
			cluster.Volumes = []*types.Volume{typestest.Volume("v1", "db-data", "n2"), typestest.Volume("v2", "logs", "n2")}
		})

		It("places every task there and pins the third there once", func() {
			Expect(nodeIDs(placed)).To(Equal([]string{"n2", "n2", "n2"}))
			Expect(placed[0].PinVolumes).To(ConsistOf(HaveField("Name", "cache")))
			Expect(placed[0].PinVolumes[0].NodeID).To(Equal("n2"))
		})
	})

	When("the volume is not local", func() {
		BeforeEach(func() {
			v := typestest.Volume("v1", "db-data", "n1")
			v.Driver = "nfs"
			cluster.Volumes = []*types.Volume{v}
		})

		It("spreads the tasks as if there were no volume and pins nothing", func() {
			// n1, where the volume is, runs the most tasks: it gets the
			// third replica only because the service spreads first.
			Expect(nodeIDs(placed)).To(Equal([]string{placed[0].NodeID, placed[1].NodeID, "n1"}))
			Expect(nodeIDs(placed)[:2]).To(ConsistOf("n2", "n3"))
			for _, p := range placed {
				Expect(p.PinVolumes).To(BeEmpty())
			}
		})
	})

	When("a pre-assigned task's volume is on another node", func() {
		BeforeEach(func() {
			cluster.Volumes = []*types.Volume{typestest.Volume("v1", "db-data", "n1")}
			tasks = []*types.Container{typestest.Container("t1", svcID, "n1"), typestest.Container("t2", svcID, "n2")}
		})

		It("keeps the task on the volume's node and refuses the other", func() {
			Expect(nodeIDs(placed)).To(Equal([]string{"n1", ""}))
			Expect(placed[1].Reason).To(Equal("volume db-data is on node n1, not on n2"))
		})
	})

	When("pre-assigned tasks mount a local volume that does not exist", func() {
		BeforeEach(func() {
			tasks = []*types.Container{typestest.Container("t1", svcID, "n3"), typestest.Container("t2", svcID, "n2")}
		})

		It("creates it on the first task's node; a local volume is on one node only", func() {
			Expect(nodeIDs(placed)).To(Equal([]string{"n3", ""}))
			Expect(placed[0].PinVolumes).To(ConsistOf(HaveField("NodeID", "n3")))
			Expect(placed[1].Reason).To(Equal("volume db-data is on node n3, not on n2"))
		})
	})
})
