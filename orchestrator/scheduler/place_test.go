package scheduler_test

import (
	"fmt"
	"math/rand/v2"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/scheduler"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Place", func() {
	var (
		cluster scheduler.Cluster
		svc     *types.Service
		tasks   []*types.Container
		placed  []scheduler.Placement
	)
	BeforeEach(func() {
		cluster = scheduler.Cluster{}
		svc = typestest.Service(svcID, "web")
		tasks = pending(3)
	})
	JustBeforeEach(func() {
		before := snapshot(cluster, svc, tasks)
		placed = scheduler.Place(cluster, svc, tasks)
		Expect(snapshot(cluster, svc, tasks)).To(Equal(before), "Place must not mutate its inputs")
	})

	When("three equal nodes take three tasks", func() {
		BeforeEach(func() { cluster.Nodes = nodes("n1", "n2", "n3") })

		It("puts one on each, in the order of the tasks", func() {
			Expect(nodeIDs(placed)).To(ConsistOf("n1", "n2", "n3"))
			for i, p := range placed {
				Expect(p.TaskID).To(Equal(tasks[i].ID))
				Expect(p.Reason).To(BeEmpty())
				Expect(p.PinVolumes).To(BeEmpty())
			}
		})
	})

	When("one of two nodes already runs tasks of the service", func() {
		BeforeEach(func() {
			cluster.Nodes = nodes("n1", "n2")
			cluster.Tasks = append(running(2, "web", svcID, "n1"), running(1, "db", "svc-2", "n2")...)
		})

		It("fills the other node first, then breaks the tie on tasks overall", func() {
			// n1: 2 of svc-1; n2: 1 of svc-2. Two go to n2 (0, then 1 of
			// svc-1 against 2); the third finds 2 against 2 of svc-1, and
			// n1 has fewer tasks overall.
			Expect(nodeIDs(placed)).To(Equal([]string{"n2", "n2", "n1"}))
		})
	})

	When("nodes run as many tasks of the service but not overall", func() {
		BeforeEach(func() {
			cluster.Nodes = nodes("n1", "n2", "n3")
			cluster.Tasks = slices.Concat(running(2, "db", "svc-2", "n1"), running(1, "db", "svc-3", "n2"))
			tasks = pending(1)
		})

		It("picks the node with the fewest tasks overall", func() {
			Expect(nodeIDs(placed)).To(Equal([]string{"n3"}))
		})
	})

	When("a task is in the snapshot with its old node while it is moved", func() {
		BeforeEach(func() {
			cluster.Nodes = nodes("n1", "n2")
			old := reserving(8, 0, typestest.Container("t1", svcID, "n1"))[0]
			cluster.Tasks = append(running(1, "db", "svc-2", "n2"), old)
			tasks = reserving(8, 0, typestest.Container("t1", svcID, ""))
		})

		It("does not count its old copy as load or reservations", func() {
			Expect(nodeIDs(placed)).To(Equal([]string{"n1"}))
		})
	})

	When("the cluster has no nodes", func() {
		It("says so for every task", func() {
			Expect(nodeIDs(placed)).To(Equal([]string{"", "", ""}))
			Expect(reasons(placed)).To(HaveEach("no nodes in the cluster"))
		})
	})

	When("the service has a constraint that does not parse", func() {
		BeforeEach(func() {
			cluster.Nodes = nodes("n1")
			svc.Constraints = []string{"zone=a"}
		})

		It("places nothing and names the constraint", func() {
			Expect(nodeIDs(placed)).To(HaveEach(""))
			Expect(reasons(placed)).To(HaveEach(And(ContainSubstring("invalid constraint"), ContainSubstring(`"zone=a"`))))
		})
	})

	When("the same inputs are given again, in another order", func() {
		It("gives the same placements", func() {
			ns := make([]*types.Node, 12)
			for i := range ns {
				ns[i] = typestest.Node(fmt.Sprintf("n%02d", i))
			}
			c := scheduler.Cluster{Nodes: ns, Tasks: running(5, "db", "svc-2", "n03")}
			ts := pending(20)
			first := scheduler.Place(c, svc, ts)
			Expect(scheduler.Place(c, svc, ts)).To(Equal(first))

			r := rand.New(rand.NewPCG(7, 7))
			for range 10 {
				shuffled := scheduler.Cluster{Nodes: slices.Clone(ns), Tasks: slices.Clone(c.Tasks)}
				r.Shuffle(len(shuffled.Nodes), func(i, j int) { shuffled.Nodes[i], shuffled.Nodes[j] = shuffled.Nodes[j], shuffled.Nodes[i] })
				r.Shuffle(len(shuffled.Tasks), func(i, j int) { shuffled.Tasks[i], shuffled.Tasks[j] = shuffled.Tasks[j], shuffled.Tasks[i] })
				Expect(scheduler.Place(shuffled, svc, ts)).To(Equal(first))
			}
		})

		It("spreads different tasks over equal nodes", func() {
			// One task per call: only the tie-break tells the nodes apart.
			c := scheduler.Cluster{Nodes: nodes("n1", "n2", "n3")}
			chosen := map[string]int{}
			for _, t := range pending(30) {
				chosen[scheduler.Place(c, svc, []*types.Container{t})[0].NodeID]++
			}
			Expect(chosen).To(HaveLen(3))
		})
	})
})

var _ = Describe("Place filters", func() {
	var svc *types.Service
	BeforeEach(func() { svc = typestest.Service(svcID, "web") })

	DescribeTable("only ready, active nodes take tasks; managers too",
		func(change func(*types.Node), want string) {
			n := typestest.Node("n1")
			change(n)
			p := scheduler.Place(scheduler.Cluster{Nodes: []*types.Node{n}}, svc, pending(1))[0]
			if want == "" {
				Expect(p).To(Equal(scheduler.Placement{TaskID: "t1", NodeID: "n1"}))
				return
			}
			Expect(p.NodeID).To(BeEmpty())
			Expect(p.Reason).To(Equal(want))
		},
		Entry("ready worker", func(*types.Node) {}, ""),
		Entry("ready manager", func(n *types.Node) { n.Role = types.RoleManager }, ""),
		Entry("down", func(n *types.Node) { n.Status = types.NodeDown }, "no suitable node (1 node): 1 not ready"),
		Entry("draining", func(n *types.Node) { n.Status = types.NodeDraining }, "no suitable node (1 node): 1 not ready"),
		Entry("unknown", func(n *types.Node) { n.Status = types.NodeUnknown }, "no suitable node (1 node): 1 not ready"),
		Entry("drained", func(n *types.Node) { n.Availability = types.NodeDrain }, "no suitable node (1 node): 1 drained or paused"),
		Entry("paused", func(n *types.Node) { n.Availability = types.NodePause }, "no suitable node (1 node): 1 drained or paused"),
	)

	DescribeTable("constraints keep tasks to the nodes that match",
		func(constraint string, want []string, reason string) {
			ns := nodes("n1", "n2", "n3")
			ns[1].Labels = map[string]string{"zone": "b"}
			ns[2].Labels = nil
			ns[2].Role = types.RoleManager
			svc.Constraints = []string{constraint}
			ps := scheduler.Place(scheduler.Cluster{Nodes: ns}, svc, pending(len(want)))
			Expect(nodeIDs(ps)).To(ConsistOf(want))
			Expect(reasons(ps)).To(HaveEach(reason))
		},
		Entry("label ==", "node.labels.zone==b", []string{"n2", "n2"}, ""),
		Entry("label != (a missing label matches)", "node.labels.zone!=a", []string{"n2", "n3"}, ""),
		Entry("role", "node.role==manager", []string{"n3"}, ""),
		Entry("label == no node has", "node.labels.zone==c", []string{""},
			"no suitable node (3 nodes): 3 do not match node.labels.zone==c"),
		Entry("missing label ==", "node.labels.disk==ssd", []string{""},
			"no suitable node (3 nodes): 3 do not match node.labels.disk==ssd"),
	)

	DescribeTable("reservations fit what the node has left, counting tasks placed earlier in the call",
		func(existing, tasks []*types.Container, want []string, reason string) {
			n := typestest.Node("n1")
			n.Resources.CPUCores, n.Resources.MemoryBytes = 2, 1<<30
			ps := scheduler.Place(scheduler.Cluster{Nodes: []*types.Node{n}, Tasks: existing}, svc, tasks)
			Expect(nodeIDs(ps)).To(Equal(want))
			Expect(ps[len(ps)-1].Reason).To(Equal(reason))
		},
		Entry("CPU", nil, reserving(1, 0, pending(3)...), []string{"n1", "n1", ""},
			"no suitable node (1 node): 1 with insufficient CPU (needs 1 core, most free 0 cores)"),
		Entry("memory", nil, reserving(0.5, 400<<20, pending(3)...), []string{"n1", "n1", ""},
			"no suitable node (1 node): 1 with insufficient memory (needs 400 MiB, most free 224 MiB)"),
		Entry("memory held by a running task", reserving(0, 768<<20, running(1, "db", "svc-2", "n1")...),
			reserving(0, 512<<20, pending(1)...), []string{""},
			"no suitable node (1 node): 1 with insufficient memory (needs 512 MiB, most free 256 MiB)"),
		Entry("fractions of a core that add up exactly", nil, reserving(0.1, 0, pending(20)...),
			slices.Repeat([]string{"n1"}, 20), ""),
		Entry("limits without reservations", nil,
			[]*types.Container{{ID: "t1", ServiceID: svcID, Resources: &types.ResourceRequirements{CPULimit: 64, MemoryLimit: 1 << 40}}},
			[]string{"n1"}, ""),
	)

	DescribeTable("a node that reports no resources takes only tasks that reserve nothing",
		func(tasks []*types.Container, want string) {
			n := typestest.Node("n1")
			n.Resources = nil
			Expect(nodeIDs(scheduler.Place(scheduler.Cluster{Nodes: []*types.Node{n}}, svc, tasks))).To(Equal([]string{want}))
		},
		Entry("no reservation", pending(1), "n1"),
		Entry("a CPU reservation", reserving(0.1, 0, pending(1)...), ""),
		Entry("a memory reservation", reserving(0, 1, pending(1)...), ""),
	)

	DescribeTable("host ports are taken per node",
		func(existing []*types.Container, want []string, reason string) {
			tasks := publishing(8080, types.ProtocolTCP, types.PublishHost, pending(2)...)
			ps := scheduler.Place(scheduler.Cluster{Nodes: nodes("n1", "n2"), Tasks: existing}, svc, tasks)
			Expect(nodeIDs(ps)).To(ConsistOf(want))
			Expect(reasons(ps)).To(ContainElement(reason))
		},
		Entry("in host mode", publishing(8080, types.ProtocolTCP, types.PublishHost, running(1, "x", "svc-2", "n1")...),
			[]string{"n2", ""}, "no suitable node (2 nodes): 2 with host port 8080/tcp in use"),
		Entry("with no mode set", publishing(8080, types.ProtocolTCP, "", running(1, "x", "svc-2", "n1")...),
			[]string{"n2", ""}, "no suitable node (2 nodes): 2 with host port 8080/tcp in use"),
		Entry("not by another protocol", publishing(8080, types.ProtocolUDP, types.PublishHost, running(1, "x", "svc-2", "n1")...),
			[]string{"n1", "n2"}, ""),
		Entry("not by ingress", publishing(8080, types.ProtocolTCP, types.PublishIngress, running(1, "x", "svc-2", "n1")...),
			[]string{"n1", "n2"}, ""),
		Entry("not by another port", publishing(8081, types.ProtocolTCP, types.PublishHost, running(1, "x", "svc-2", "n1")...),
			[]string{"n1", "n2"}, ""),
	)

	DescribeTable("a pre-assigned task (global service) is kept or refused on its node",
		func(change func(*scheduler.Cluster, *types.Service, *types.Container), want, reason string) {
			c := scheduler.Cluster{Nodes: nodes("n1", "n2"), Tasks: running(3, "web", svcID, "n2")}
			task := publishing(8080, types.ProtocolTCP, types.PublishHost, typestest.Container("t1", svcID, "n2"))[0]
			change(&c, svc, task)
			p := scheduler.Place(c, svc, []*types.Container{task})[0]
			Expect(p).To(Equal(scheduler.Placement{TaskID: "t1", NodeID: want, Reason: reason}))
		},
		Entry("kept, though another node is emptier", func(*scheduler.Cluster, *types.Service, *types.Container) {}, "n2", ""),
		Entry("node down", func(c *scheduler.Cluster, _ *types.Service, _ *types.Container) { c.Nodes[1].Status = types.NodeDown },
			"", "node n2 is down"),
		Entry("node drained", func(c *scheduler.Cluster, _ *types.Service, _ *types.Container) {
			c.Nodes[1].Availability = types.NodeDrain
		}, "", "node n2 is drained"),
		Entry("node gone", func(c *scheduler.Cluster, _ *types.Service, _ *types.Container) { c.Nodes = c.Nodes[:1] },
			"", "node n2 is not in the cluster"),
		Entry("constraint", func(_ *scheduler.Cluster, s *types.Service, _ *types.Container) {
			s.Constraints = []string{"node.labels.zone==a", "node.id!=n2"}
		}, "", "node n2 does not match node.id!=n2"),
		Entry("memory", func(c *scheduler.Cluster, _ *types.Service, t *types.Container) {
			reserving(0, 15<<30, c.Tasks[0])
			reserving(0, 2<<30, t)
		}, "", "node n2 has insufficient memory (needs 2 GiB, free 1 GiB)"),
		Entry("host port", func(c *scheduler.Cluster, _ *types.Service, _ *types.Container) {
			c.Tasks = append(c.Tasks, publishing(8080, types.ProtocolTCP, "", running(1, "x", "svc-2", "n2")...)...)
		}, "", "node n2 has host port 8080/tcp in use"),
	)
})
