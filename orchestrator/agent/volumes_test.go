package agent_test

import (
	"encoding/json"
	"maps"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/fake"
	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("PlanVolumes", func() {
	var (
		ledger map[string]agent.HeldVolume
		pinned []agent.Volume
		gone   []string
		used   map[string]bool
		plan   agent.VolumePlan
	)
	inUse := func(name string) bool { return used[name] }

	BeforeEach(func() {
		ledger = map[string]agent.HeldVolume{"vol-a": {Name: "a"}, "vol-b": {Name: "b"}}
		pinned = []agent.Volume{{ID: "vol-b", Name: "b"}, {ID: "vol-a", Name: "a"}}
		gone, used = nil, map[string]bool{}
	})
	JustBeforeEach(func() {
		before := maps.Clone(ledger)
		plan = agent.PlanVolumes(ledger, pinned, gone, inUse)
		Expect(ledger).To(Equal(before), "the ledger given is not changed")
	})

	When("every held volume is still pinned here", func() {
		It("keeps every directory, and asks about every volume again", func() {
			Expect(plan.Ensure).To(Equal([]agent.Volume{{ID: "vol-a", Name: "a"}, {ID: "vol-b", Name: "b"}}))
			Expect(plan.Remove).To(BeEmpty())
			Expect(plan.Ledger).To(Equal(ledger))
			Expect(agent.Held(plan.Ledger)).To(Equal([]string{"vol-a", "vol-b"}))
		})
	})

	When("a held volume is gone and no container mounts it", func() {
		BeforeEach(func() {
			pinned = pinned[:1]
			gone = []string{"vol-a", "vol-never-held"}
		})

		It("removes its directory, and asks no more about it", func() {
			Expect(plan.Ensure).To(Equal([]agent.Volume{{ID: "vol-b", Name: "b"}}))
			Expect(plan.Remove).To(Equal([]agent.Volume{{ID: "vol-a", Name: "a"}}))
			Expect(agent.Held(plan.Ledger)).To(Equal([]string{"vol-b"}))
			Expect(plan.Ledger).NotTo(HaveKey("vol-never-held"), "what the node did not make is never its to remove")
		})
	})

	When("a gone volume's directory is still mounted", func() {
		BeforeEach(func() {
			pinned = pinned[:1]
			gone = []string{"vol-a"}
			used["a"] = true
		})

		It("keeps it, marked gone, until no container mounts it", func() {
			Expect(plan.Remove).To(BeEmpty())
			Expect(plan.Ledger).To(HaveKeyWithValue("vol-a", agent.HeldVolume{Name: "a", Gone: true}))

			used["a"] = false
			next := agent.PlanVolumes(plan.Ledger, pinned, nil, inUse)
			Expect(next.Remove).To(Equal([]agent.Volume{{ID: "vol-a", Name: "a"}}))
		})
	})

	When("a volume of the same name replaces a gone one", func() {
		BeforeEach(func() {
			pinned = []agent.Volume{{ID: "vol-b", Name: "b"}, {ID: "vol-a2", Name: "a"}}
			gone = []string{"vol-a"}
		})

		It("keeps the directory for the new volume", func() {
			Expect(plan.Remove).To(BeEmpty())
			Expect(plan.Ledger).To(Equal(map[string]agent.HeldVolume{"vol-a2": {Name: "a"}, "vol-b": {Name: "b"}}))
		})
	})

	When("the node holds nothing yet", func() {
		BeforeEach(func() { ledger = nil })

		It("makes every pinned volume's directory", func() {
			Expect(plan.Ensure).To(HaveLen(2))
			Expect(plan.Ledger).To(BeEmpty(), "the caller records the directories it had to make")
		})
	})
})

var _ = Describe("Agent.UsesVolume", func() {
	var (
		clock *fake.Clock
		rt    *fake.Runtime
		a     *agent.Agent
		task  *types.Container
		as    []agent.Assignment
	)
	step := func() {
		GinkgoHelper()
		sts, err := a.Step(as)
		Expect(err).NotTo(HaveOccurred())
		a.Sent(sts)
	}

	BeforeEach(func() {
		clock = fake.NewClock(typestest.Epoch)
		rt = fake.NewRuntime(clock, fake.Knobs{StopLatency: time.Second})
		a = agent.New("node-1", rt)
		task = typestest.Container("t-1", "svc-1", "node-1")
		task.Mounts = []*types.VolumeMount{{Source: "db-data", Target: "/data"}}
		as = []agent.Assignment{{Task: task}}
	})

	It("says yes to everything before the first step", func() {
		Expect(a.UsesVolume("anything")).To(BeTrue())
	})

	It("follows the containers of the node, while they exist", func() {
		step()
		Expect(a.UsesVolume("db-data")).To(BeTrue())
		Expect(a.UsesVolume("other")).To(BeFalse())

		as = nil // the task is deleted: its container is stopped
		step()
		Expect(a.UsesVolume("db-data")).To(BeTrue(), "still stopping")
		clock.Advance(time.Second)
		step()
		step()
		Expect(rt.Containers()).To(BeEmpty())
		Expect(a.UsesVolume("db-data")).To(BeFalse())
	})

	It("says yes to everything while a container's task is unknown", func() {
		step()
		a = agent.New("node-1", rt) // restarted: it adopts the container
		as = []agent.Assignment{{Task: typestest.Container("t-2", "svc-2", "node-2")}}
		step()
		Expect(a.UsesVolume("other")).To(BeTrue())
	})
})

var _ = Describe("Agent on a wall clock", func() {
	It("knows its statuses when the managers send them back through JSON, so it reports once and removes a stopped container", func() {
		clock := fake.NewClock(time.Now()) // a monotonic reading, and the local zone
		rt := fake.NewRuntime(clock, fake.Knobs{StartLatency: time.Second, StopLatency: time.Second})
		a := agent.New("node-1", rt)
		task := typestest.Container("t-1", "svc-1", "node-1")
		as := []agent.Assignment{{Task: task}}
		echo := func(sts []fsm.TaskStatus) []fsm.TaskStatus {
			GinkgoHelper()
			data, err := json.Marshal(sts)
			Expect(err).NotTo(HaveOccurred())
			var back []fsm.TaskStatus
			Expect(json.Unmarshal(data, &back)).To(Succeed())
			return back
		}
		step := func() []fsm.TaskStatus {
			GinkgoHelper()
			sts, err := a.Step(as)
			Expect(err).NotTo(HaveOccurred())
			a.Sent(echo(sts))
			return sts
		}
		step()
		clock.Advance(time.Second)
		Expect(step()).To(HaveLen(1), "running")
		Expect(step()).To(BeEmpty(), "nothing changed")
		task.DesiredState = types.ContainerShutdown
		step()
		clock.Advance(time.Second)
		Expect(step()).To(HaveLen(1), "shut down")
		step()
		Expect(rt.Containers()).To(BeEmpty())
	})
})
