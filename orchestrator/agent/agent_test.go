package agent_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/fake"
	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Agent", func() {
	var (
		clock *fake.Clock
		rt    *fake.Runtime
		a     *agent.Agent
		task  *types.Container
		as    []agent.Assignment
	)
	secrets := map[string][]byte{"db-password": []byte("hunter2")}

	step := func() []fsm.TaskStatus {
		GinkgoHelper()
		sts, err := a.Step(as)
		Expect(err).NotTo(HaveOccurred())
		a.Sent(sts)
		return sts
	}
	states := func(sts []fsm.TaskStatus) []types.ContainerState {
		var out []types.ContainerState
		for _, st := range sts {
			out = append(out, st.ActualState)
		}
		return out
	}
	containers := func() []string {
		GinkgoHelper()
		cs, err := rt.Containers()
		Expect(err).NotTo(HaveOccurred())
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.TaskID)
		}
		return ids
	}

	BeforeEach(func() {
		clock = fake.NewClock(typestest.Epoch)
		rt = fake.NewRuntime(clock, fake.Knobs{StartLatency: 2 * time.Second, StopLatency: time.Second})
		a = agent.New("node-1", rt)
		task = typestest.Container("t-1", "svc-1", "node-1")
		as = []agent.Assignment{{Task: task, Secrets: secrets}}
	})

	When("a task is assigned", func() {
		It("starts it with its secrets and reports each change once", func() {
			Expect(states(step())).To(Equal([]types.ContainerState{types.ContainerPending}))
			Expect(rt.Secrets("t-1")).To(Equal(secrets))
			Expect(step()).To(BeEmpty(), "nothing changed")
			clock.Advance(2 * time.Second)
			sts := step()
			Expect(states(sts)).To(Equal([]types.ContainerState{types.ContainerRunning}))
			Expect(sts[0].NodeID).To(Equal("node-1"))
			Expect(sts[0].ContainerID).NotTo(BeEmpty())
			Expect(sts[0].StartedAt).To(Equal(typestest.Epoch.Add(2 * time.Second)))
		})

		It("is settling while the container starts, and while it stops", func() {
			Expect(a.Settling()).To(BeFalse(), "before any step")
			step()
			Expect(a.Settling()).To(BeTrue(), "pending")
			clock.Advance(2 * time.Second)
			step()
			Expect(a.Settling()).To(BeFalse(), "running, as wanted")
			task.DesiredState = types.ContainerShutdown
			step()
			Expect(a.Settling()).To(BeTrue(), "stopping")
			clock.Advance(time.Second)
			step()
			Expect(a.Settling()).To(BeFalse(), "shut down, as wanted")
			as = nil
			step()
			Expect(a.Settling()).To(BeFalse(), "a stopped container is removed, not waited for")
		})

		It("reports again what the managers did not accept", func() {
			_, err := a.Step(as)
			Expect(err).NotTo(HaveOccurred())
			sts, err := a.Step(as)
			Expect(err).NotTo(HaveOccurred())
			Expect(states(sts)).To(Equal([]types.ContainerState{types.ContainerPending}))
		})

		It("reports a task the runtime refuses as failed, with the reason", func() {
			task.Env = []string{"NOT-KEY-VALUE"}
			sts := step()
			Expect(states(sts)).To(Equal([]types.ContainerState{types.ContainerFailed}))
			Expect(sts[0].Error).To(HavePrefix("start: "))
		})

		It("ignores tasks of other nodes", func() {
			as = append(as, agent.Assignment{Task: typestest.Container("t-2", "svc-1", "node-2")})
			step()
			Expect(containers()).To(Equal([]string{"t-1"}))
		})
	})

	When("a task is to stop", func() {
		It("stops it, reports it, then removes its container and secrets", func() {
			step()
			clock.Advance(2 * time.Second)
			step()
			task.DesiredState = types.ContainerShutdown
			step()
			clock.Advance(time.Second)
			Expect(states(step())).To(Equal([]types.ContainerState{types.ContainerShutdown}))
			Expect(rt.Secrets("t-1")).To(BeNil())
			Expect(containers()).To(Equal([]string{"t-1"}), "kept until its final status is sent")
			Expect(step()).To(BeEmpty())
			Expect(containers()).To(BeEmpty())
		})
	})

	When("a task is no longer assigned to the node", func() {
		It("stops and removes its container", func() {
			step()
			clock.Advance(2 * time.Second)
			step()
			as = nil
			Expect(step()).To(BeEmpty())
			clock.Advance(time.Second)
			step()
			Expect(containers()).To(BeEmpty())
		})
	})

	When("the agent restarts", func() {
		It("adopts the containers it finds instead of starting them again", func() {
			step()
			clock.Advance(2 * time.Second)
			step()
			a = agent.New("node-1", rt)
			sts := step()
			Expect(states(sts)).To(Equal([]types.ContainerState{types.ContainerRunning}))
			Expect(containers()).To(Equal([]string{"t-1"}))
		})
	})

	When("a container crashes", func() {
		It("reports the failure with its exit code", func() {
			step()
			clock.Advance(2 * time.Second)
			step()
			Expect(rt.Crash("t-1", 3)).To(Succeed())
			sts := step()
			Expect(states(sts)).To(Equal([]types.ContainerState{types.ContainerFailed}))
			Expect(sts[0].ExitCode).To(Equal(3))
			Expect(containers()).To(Equal([]string{"t-1"}), "kept until the managers retire the task")
		})
	})
})
