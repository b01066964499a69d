package dispatcher_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Dispatcher", func() {
	var (
		t0    time.Time
		d     *dispatcher.Dispatcher
		nodes []*types.Node
	)
	cfg := dispatcher.Config{TTL: 15 * time.Second, Grace: 20 * time.Second}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	statuses := func(cs []*fsm.SetNodeStatus) map[string]types.NodeStatus {
		m := map[string]types.NodeStatus{}
		for _, c := range cs {
			m[c.NodeID] = c.Status
		}
		return m
	}

	BeforeEach(func() {
		t0 = typestest.Epoch
		d = dispatcher.New(cfg, t0)
		nodes = []*types.Node{typestest.Node("node-2"), typestest.Node("node-1")}
	})

	When("nodes keep heartbeating", func() {
		It("never marks them down", func() {
			for s := 0; s <= 120; s += 5 {
				d.Heartbeat("node-1", at(s))
				d.Heartbeat("node-2", at(s))
				Expect(d.Check(nodes, at(s))).To(BeEmpty())
			}
		})
	})

	When("a node falls silent", func() {
		It("marks it down once the TTL has passed, with its last heartbeat", func() {
			for s := 0; s <= 30; s += 5 {
				d.Heartbeat("node-1", at(s))
				d.Heartbeat("node-2", at(min(s, 10)))
			}
			Expect(d.Check(nodes, at(25))).To(BeEmpty(), "10 s + 15 s TTL: not yet")
			Expect(d.Next(nodes, at(25))).To(Equal(at(25).Add(time.Nanosecond)))
			cs := d.Check(nodes, at(26))
			Expect(cs).To(Equal([]*fsm.SetNodeStatus{{NodeID: "node-2", Status: types.NodeDown, LastHeartbeat: at(10)}}))
		})

		It("marks it ready when it is heard from again", func() {
			nodes[0].Status = types.NodeDown
			d.Heartbeat("node-2", at(40))
			d.Heartbeat("node-1", at(40))
			Expect(statuses(d.Check(nodes, at(41)))).To(Equal(map[string]types.NodeStatus{"node-2": types.NodeReady}))
		})
	})

	When("this manager has just become leader", func() {
		It("gives every node the grace period before marking it down", func() {
			Expect(d.Check(nodes, at(19))).To(BeEmpty(), "nobody has reached the new leader yet")
			Expect(d.Check(nodes, at(20))).To(BeEmpty())
			d.Heartbeat("node-1", at(18))
			Expect(statuses(d.Check(nodes, at(21)))).To(Equal(map[string]types.NodeStatus{"node-2": types.NodeDown}))
		})

		It("without a grace period, would mark every node down at once", func() {
			broken := dispatcher.New(dispatcher.Config{TTL: 15 * time.Second}, t0)
			Expect(broken.Check(nodes, at(1))).To(HaveLen(2))
		})
	})

	It("returns changes in node ID order and skips nodes already down", func() {
		nodes = append(nodes, typestest.Node("node-0"))
		nodes[2].Status = types.NodeDown
		cs := d.Check(nodes, at(60))
		Expect(cs).To(HaveLen(2))
		Expect(cs[0].NodeID).To(Equal("node-1"))
		Expect(cs[1].NodeID).To(Equal("node-2"))
	})
})
