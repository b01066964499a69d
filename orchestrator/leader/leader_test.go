package leader_test

import (
	"math/rand/v2"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/leader"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

// log is a Proposer that holds proposals until commit applies them, as a
// replicated log would.
type log struct {
	store   state.Store
	l       *leader.Leader
	waiting []proposal
	kinds   []fsm.Kind
}

type proposal struct {
	cmd  fsm.Command
	done func(error)
}

func (g *log) Propose(cmd fsm.Command, done func(error)) {
	g.kinds = append(g.kinds, cmd.Kind())
	g.waiting = append(g.waiting, proposal{cmd, done})
}

// commit applies every waiting proposal, in order.
func (g *log) commit() {
	for len(g.waiting) > 0 {
		p := g.waiting[0]
		g.waiting = g.waiting[1:]
		err := fsm.Apply(g.store, p.cmd)
		if err == nil {
			g.l.Applied(p.cmd)
		}
		p.done(err)
	}
}

var _ = Describe("Leader", func() {
	var (
		store state.Store
		g     *log
		l     *leader.Leader
		now   time.Time
	)
	apply := func(c fsm.Command) {
		GinkgoHelper()
		Expect(fsm.Apply(store, c)).To(Succeed())
		l.Applied(c)
	}

	BeforeEach(func() {
		store = state.NewMemory()
		now = typestest.Epoch
		for _, id := range []string{"node-1", "node-2"} {
			Expect(fsm.Apply(store, &fsm.RegisterNode{Node: typestest.Node(id)})).To(Succeed())
		}
		svc := typestest.Service("svc-1", "web")
		svc.Replicas, svc.Ports = 2, nil
		Expect(fsm.Apply(store, &fsm.CreateService{Service: svc})).To(Succeed())
		g = &log{store: store}
		l = leader.New(store, g, dispatcher.Config{TTL: 3 * time.Second, Grace: 3 * time.Second}, now, rand.New(rand.NewPCG(1, 1)))
		g.l = l
	})

	When("the state needs work", func() {
		It("proposes one plan at a time, then nothing once the cluster is as wanted", func() {
			Expect(l.Tick(now)).To(Succeed())
			Expect(g.kinds).To(Equal([]fsm.Kind{fsm.KindPlanTasks}))
			Expect(l.Tick(now.Add(time.Second))).To(Succeed())
			Expect(g.kinds).To(HaveLen(1), "a plan is in flight")
			g.commit()
			Expect(l.Tick(now.Add(2 * time.Second))).To(Succeed())
			Expect(g.kinds).To(HaveLen(1), "the plan's result needs nothing more")
			tasks, err := store.ListContainers()
			Expect(err).NotTo(HaveOccurred())
			Expect(tasks).To(HaveLen(2))
		})
	})

	When("workers report", func() {
		var as []agent.Assignment
		BeforeEach(func() {
			Expect(l.Tick(now)).To(Succeed())
			g.commit()
			var err error
			as, err = l.Assignments("node-1")
			Expect(err).NotTo(HaveOccurred())
			Expect(as).To(HaveLen(1))
		})
		report := func(state types.ContainerState) []fsm.TaskStatus {
			return []fsm.TaskStatus{{TaskID: as[0].Task.ID, NodeID: "node-1", ActualState: state, FinishedAt: now}}
		}

		It("answers a heartbeat without reports at once, with the node's tasks", func() {
			var got []agent.Assignment
			l.Heartbeat("node-1", now, nil, func(a []agent.Assignment, sent []fsm.TaskStatus) { got = a })
			Expect(got).To(Equal(as))
		})

		It("answers reports once they are committed, and not if they are refused", func() {
			var sent []fsm.TaskStatus
			answered := false
			l.Heartbeat("node-1", now, report(types.ContainerRunning), func(_ []agent.Assignment, s []fsm.TaskStatus) { answered, sent = true, s })
			Expect(answered).To(BeFalse())
			g.commit()
			Expect(sent).To(Equal(report(types.ContainerRunning)))

			answered = false
			l.Heartbeat("node-1", now, []fsm.TaskStatus{{TaskID: as[0].Task.ID, NodeID: "node-1", ActualState: "bogus"}}, func([]agent.Assignment, []fsm.TaskStatus) { answered = true })
			g.commit()
			Expect(answered).To(BeFalse())
		})

		It("does not reconcile after a task starts, but does after it fails", func() {
			apply(&fsm.ReportTasks{Statuses: report(types.ContainerRunning)})
			g.kinds = nil
			Expect(l.Tick(now)).To(Succeed())
			Expect(g.kinds).To(BeEmpty())
			apply(&fsm.ReportTasks{Statuses: report(types.ContainerFailed)})
			Expect(l.Tick(now.Add(10 * time.Second))).To(Succeed())
			Expect(g.kinds).To(ContainElement(fsm.KindPlanTasks))
		})

		It("reconciles after a running task turns unhealthy, and fails it", func() {
			apply(&fsm.ReportTasks{Statuses: report(types.ContainerRunning)})
			Expect(l.Tick(now)).To(Succeed())
			g.kinds = nil
			sick := report(types.ContainerRunning)
			sick[0].Health = types.HealthUnhealthy
			apply(&fsm.ReportTasks{Statuses: sick})
			Expect(l.Tick(now)).To(Succeed())
			Expect(g.kinds).To(Equal([]fsm.Kind{fsm.KindPlanTasks}))
			g.commit()
			t, err := store.GetContainer(as[0].Task.ID)
			Expect(err).NotTo(HaveOccurred())
			Expect(t.DesiredState).To(Equal(types.ContainerFailed))
		})

		It("reads a node's assignments again only when tasks changed", func() {
			again, err := l.Assignments("node-1")
			Expect(err).NotTo(HaveOccurred())
			Expect(&again[0]).To(BeIdenticalTo(&as[0]), "cached")
			apply(&fsm.ReportTasks{Statuses: report(types.ContainerRunning)})
			fresh, err := l.Assignments("node-1")
			Expect(err).NotTo(HaveOccurred())
			Expect(fresh[0].Task.ActualState).To(Equal(types.ContainerRunning))
		})
	})

	It("marks a node down once the grace and TTL have passed without a heartbeat", func() {
		l.Heartbeat("node-1", now.Add(5*time.Second), nil, func([]agent.Assignment, []fsm.TaskStatus) {})
		g.kinds = nil
		Expect(l.Tick(now.Add(6 * time.Second))).To(Succeed())
		Expect(g.kinds).To(ContainElement(fsm.KindSetNodeStatus))
		g.commit()
		n, err := store.GetNode("node-2")
		Expect(err).NotTo(HaveOccurred())
		Expect(n.Status).To(Equal(types.NodeDown))
		n1, err := store.GetNode("node-1")
		Expect(err).NotTo(HaveOccurred())
		Expect(n1.Status).To(Equal(types.NodeReady))
	})
})
