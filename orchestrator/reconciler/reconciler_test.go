package reconciler_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/reconciler"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

// world is a store driven the way the leader drives it: reconcile, commit
// the plan, let the workers report.
type world struct {
	store state.Store
	now   time.Time
	rand  *rand.Rand
}

func newWorld(nodes ...string) *world {
	w := &world{store: state.NewMemory(), now: typestest.Epoch, rand: rand.New(rand.NewPCG(1, 2))}
	for _, id := range nodes {
		w.apply(&fsm.RegisterNode{Node: typestest.Node(id)})
	}
	return w
}

func (w *world) apply(c fsm.Command) {
	GinkgoHelper()
	Expect(fsm.Apply(w.store, c)).To(Succeed())
}

func (w *world) reconcile() reconciler.Result {
	GinkgoHelper()
	c, err := reconciler.Snapshot(w.store)
	Expect(err).NotTo(HaveOccurred())
	res := reconciler.Reconcile(c, w.now, w.rand)
	if res.Plan != nil {
		w.apply(res.Plan)
	}
	return res
}

// run reports every assigned task as running, as the workers would.
func (w *world) run() {
	GinkgoHelper()
	var sts []fsm.TaskStatus
	for _, t := range w.tasks() {
		if t.NodeID != "" && t.DesiredState == types.ContainerRunning && t.ActualState == types.ContainerPending {
			sts = append(sts, fsm.TaskStatus{TaskID: t.ID, NodeID: t.NodeID, ActualState: types.ContainerRunning, StartedAt: w.now})
		}
	}
	w.apply(&fsm.ReportTasks{Statuses: sts})
}

func (w *world) end(id string, state types.ContainerState) {
	GinkgoHelper()
	t, err := w.store.GetContainer(id)
	Expect(err).NotTo(HaveOccurred())
	exit := 0
	if state == types.ContainerFailed {
		exit = 1
	}
	w.apply(&fsm.ReportTasks{Statuses: []fsm.TaskStatus{{TaskID: id, NodeID: t.NodeID, ActualState: state, ExitCode: exit, FinishedAt: w.now}}})
}

// health reports a running task's health check, as its worker would.
func (w *world) health(id string, h types.HealthStatus) {
	GinkgoHelper()
	t := w.task(id)
	w.apply(&fsm.ReportTasks{Statuses: []fsm.TaskStatus{{TaskID: id, NodeID: t.NodeID, ActualState: types.ContainerRunning, Health: h, StartedAt: t.StartedAt}}})
}

func (w *world) task(id string) *types.Container {
	GinkgoHelper()
	t, err := w.store.GetContainer(id)
	Expect(err).NotTo(HaveOccurred())
	return t
}

// others lists the tasks other than id.
func (w *world) others(id string) []*types.Container {
	GinkgoHelper()
	var out []*types.Container
	for _, t := range w.tasks() {
		if t.ID != id {
			out = append(out, t)
		}
	}
	return out
}

func (w *world) tasks() []*types.Container {
	GinkgoHelper()
	ts, err := w.store.ListContainers()
	Expect(err).NotTo(HaveOccurred())
	return ts
}

// live lists the tasks meant to run, as "slot@node".
func (w *world) live() []string {
	GinkgoHelper()
	out := []string{}
	for _, t := range w.tasks() {
		if t.DesiredState == types.ContainerRunning {
			out = append(out, fmt.Sprintf("%d@%s", t.Slot, t.NodeID))
		}
	}
	return out
}

func (w *world) nodeStatus(id string, s types.NodeStatus) {
	GinkgoHelper()
	w.apply(&fsm.SetNodeStatus{NodeID: id, Status: s, LastHeartbeat: w.now})
}

func (w *world) settle() {
	GinkgoHelper()
	for range 5 {
		w.reconcile()
		w.run()
	}
	Expect(w.reconcile().Plan).To(BeNil(), "the cluster settles")
}

func service(replicas int, mut ...func(*types.Service)) *types.Service {
	s := typestest.Service("svc-1", "web")
	s.Replicas = replicas
	s.Ports = nil
	for _, m := range mut {
		m(s)
	}
	return s
}

var _ = Describe("Reconcile", func() {
	It("creates and spreads the replicas of a new service, then has nothing to do", func() {
		w := newWorld("node-1", "node-2", "node-3")
		w.apply(&fsm.CreateService{Service: service(3)})
		res := w.reconcile()
		Expect(res.Plan.Upsert).To(HaveLen(3))
		Expect(w.live()).To(HaveLen(3))
		nodes := map[string]bool{}
		for _, t := range w.tasks() {
			nodes[t.NodeID] = true
			Expect(t.Image).To(Equal("nginx:1.27"))
			Expect(t.ServiceName).To(Equal("web"))
		}
		Expect(nodes).To(HaveLen(3))
		w.run()
		Expect(w.reconcile().Plan).To(BeNil())
	})

	It("retires the highest slots when scaled down", func() {
		w := newWorld("node-1", "node-2")
		w.apply(&fsm.CreateService{Service: service(3)})
		w.settle()
		w.apply(&fsm.UpdateService{Service: service(1)})
		w.reconcile()
		Expect(w.live()).To(HaveLen(1))
		Expect(w.live()[0]).To(HavePrefix("1@"))
	})

	When("a task ends", func() {
		var w *world
		var first string
		BeforeEach(func() {
			w = newWorld("node-1")
			first = ""
		})
		start := func(p *types.RestartPolicy) {
			w.apply(&fsm.CreateService{Service: service(1, func(s *types.Service) { s.RestartPolicy = p })})
			w.settle()
			first = w.tasks()[0].ID
		}

		It("restarts it in the same slot once the delay has passed", func() {
			start(&types.RestartPolicy{Condition: types.RestartAlways, Delay: 5 * time.Second})
			w.end(first, types.ContainerFailed)
			res := w.reconcile()
			Expect(res.Plan).To(BeNil())
			Expect(res.Wake).To(Equal(w.now.Add(5 * time.Second)))
			w.now = w.now.Add(5 * time.Second)
			w.reconcile()
			var attempts []int
			for _, t := range w.tasks() {
				if t.DesiredState == types.ContainerRunning {
					Expect(t.ID).NotTo(Equal(first))
					Expect(t.Slot).To(Equal(1))
					attempts = append(attempts, t.Attempt)
				}
			}
			Expect(attempts).To(Equal([]int{1}))
			old, err := w.store.GetContainer(first)
			Expect(err).NotTo(HaveOccurred())
			Expect(old.DesiredState).To(Equal(types.ContainerShutdown))
		})

		DescribeTable("follows the restart policy",
			func(p *types.RestartPolicy, attempt int, end types.ContainerState, restarted bool) {
				start(p)
				if attempt > 0 {
					t := w.tasks()[0]
					t.Attempt = attempt
					w.apply(&fsm.PlanTasks{Upsert: []*types.Container{t}})
				}
				w.end(first, end)
				w.reconcile()
				Expect(len(w.tasks()) == 2).To(Equal(restarted))
			},
			Entry("always, after success", &types.RestartPolicy{Condition: types.RestartAlways}, 0, types.ContainerComplete, true),
			Entry("on-failure, after failure", &types.RestartPolicy{Condition: types.RestartOnFailure}, 0, types.ContainerFailed, true),
			Entry("on-failure, after success", &types.RestartPolicy{Condition: types.RestartOnFailure}, 0, types.ContainerComplete, false),
			Entry("none", &types.RestartPolicy{Condition: types.RestartNone}, 0, types.ContainerFailed, false),
			Entry("attempts used up", &types.RestartPolicy{Condition: types.RestartAlways, MaxAttempts: 3}, 3, types.ContainerFailed, false),
			Entry("attempts left", &types.RestartPolicy{Condition: types.RestartAlways, MaxAttempts: 3}, 2, types.ContainerFailed, true),
			Entry("no policy", nil, 0, types.ContainerFailed, true),
		)

		It("keeps at most the history limit of ended tasks per slot", func() {
			start(&types.RestartPolicy{Condition: types.RestartAlways})
			for range reconciler.HistoryLimit + 3 {
				for _, t := range w.tasks() {
					if t.DesiredState == types.ContainerRunning {
						w.end(t.ID, types.ContainerFailed)
					}
				}
				w.reconcile()
				w.run()
			}
			w.reconcile()
			Expect(len(w.tasks())).To(BeNumerically("<=", reconciler.HistoryLimit+1))
			Expect(w.live()).To(HaveLen(1))
		})
	})

	When("a running task's health check fails", func() {
		var w *world
		var first string
		BeforeEach(func() {
			w = newWorld("node-1")
			first = ""
		})
		start := func(p *types.RestartPolicy, attempt int) {
			w.apply(&fsm.CreateService{Service: service(1, func(s *types.Service) { s.RestartPolicy = p })})
			w.settle()
			first = w.tasks()[0].ID
			if attempt > 0 {
				t := w.task(first)
				t.Attempt = attempt
				w.apply(&fsm.PlanTasks{Upsert: []*types.Container{t}})
			}
		}

		DescribeTable("fails it, and restarts it as its policy restarts a failed task",
			func(p *types.RestartPolicy, attempt int, h types.HealthStatus, desired types.ContainerState, replaced bool) {
				start(p, attempt)
				w.health(first, h)
				w.reconcile()
				Expect(w.task(first).DesiredState).To(Equal(desired))
				if replaced {
					Expect(w.others(first)).To(HaveLen(1))
					t := w.others(first)[0]
					Expect(t.Slot).To(Equal(1))
					Expect(t.Attempt).To(Equal(attempt + 1))
					Expect(t.DesiredState).To(Equal(types.ContainerRunning))
					Expect(t.NodeID).To(Equal("node-1"))
				} else {
					Expect(w.others(first)).To(BeEmpty())
				}
				if desired != types.ContainerRunning {
					w.end(first, types.ContainerShutdown) // the agent stopped it
				}
				w.run()
				Expect(w.reconcile().Plan).To(BeNil(), "nothing more to do: no second replacement")
				if replaced {
					Expect(w.live()).To(Equal([]string{"1@node-1"}))
				} else {
					Expect(w.others(first)).To(BeEmpty(), "the slot is not filled again")
				}
			},
			Entry("always: replaced", &types.RestartPolicy{Condition: types.RestartAlways}, 0, types.HealthUnhealthy, types.ContainerShutdown, true),
			Entry("on-failure: replaced", &types.RestartPolicy{Condition: types.RestartOnFailure}, 0, types.HealthUnhealthy, types.ContainerShutdown, true),
			Entry("no policy: replaced", nil, 0, types.HealthUnhealthy, types.ContainerShutdown, true),
			Entry("attempts left: replaced", &types.RestartPolicy{Condition: types.RestartAlways, MaxAttempts: 3}, 2, types.HealthUnhealthy, types.ContainerShutdown, true),
			// Swarm stops an unhealthy task whose condition is none and
			// does not replace it; so does Warren, and the slot stays as
			// it ended, as after a failure.
			Entry("none: stopped, not replaced", &types.RestartPolicy{Condition: types.RestartNone}, 0, types.HealthUnhealthy, types.ContainerFailed, false),
			Entry("attempts used up: stopped, not replaced", &types.RestartPolicy{Condition: types.RestartAlways, MaxAttempts: 3}, 3, types.HealthUnhealthy, types.ContainerFailed, false),
			Entry("healthy: untouched", &types.RestartPolicy{Condition: types.RestartAlways}, 0, types.HealthHealthy, types.ContainerRunning, false),
			Entry("unknown, in its start period: untouched", &types.RestartPolicy{Condition: types.RestartAlways}, 0, types.HealthUnknown, types.ContainerRunning, false),
		)

		It("stops it at once, then replaces it once, in its slot, when the delay has passed since it stopped", func() {
			start(&types.RestartPolicy{Condition: types.RestartAlways, Delay: 5 * time.Second}, 0)
			w.health(first, types.HealthUnhealthy)
			res := w.reconcile()
			Expect(res.Wake).To(Equal(w.now.Add(5 * time.Second)))
			Expect(w.task(first).DesiredState).To(Equal(types.ContainerFailed), "stopped, and still in its slot")
			Expect(w.others(first)).To(BeEmpty())
			Expect(w.reconcile().Plan).To(BeNil(), "failed once")

			w.now = w.now.Add(time.Second)
			w.end(first, types.ContainerShutdown)
			res = w.reconcile()
			Expect(res.Plan).To(BeNil())
			Expect(res.Wake).To(Equal(w.now.Add(5*time.Second)), "the delay counts from the stop")

			w.now = w.now.Add(5 * time.Second)
			w.reconcile()
			Expect(w.task(first).DesiredState).To(Equal(types.ContainerShutdown))
			Expect(w.others(first)).To(HaveLen(1))
			Expect(w.others(first)[0].Attempt).To(Equal(1))
			Expect(w.live()).To(Equal([]string{"1@node-1"}))
			w.run()
			Expect(w.reconcile().Plan).To(BeNil())
			Expect(w.tasks()).To(HaveLen(2))
		})

		It("leaves a task on a node that is down to the node's rules: its health is stale", func() {
			w = newWorld("node-1", "node-2")
			w.apply(&fsm.CreateService{Service: service(0, func(s *types.Service) { s.Mode = types.ModeGlobal })})
			w.settle()
			for _, t := range w.tasks() {
				if t.NodeID == "node-2" {
					w.health(t.ID, types.HealthUnhealthy)
				}
			}
			w.nodeStatus("node-2", types.NodeDown)
			Expect(w.reconcile().Plan).To(BeNil(), "a global task waits for its node")
			Expect(w.live()).To(ConsistOf("0@node-1", "0@node-2"))
		})

		It("replaces an unhealthy global task on its own node", func() {
			w = newWorld("node-1", "node-2")
			w.apply(&fsm.CreateService{Service: service(0, func(s *types.Service) {
				s.Mode = types.ModeGlobal
				s.RestartPolicy = &types.RestartPolicy{Condition: types.RestartOnFailure}
			})})
			w.settle()
			var sick string
			for _, t := range w.tasks() {
				if t.NodeID == "node-2" {
					sick = t.ID
				}
			}
			w.health(sick, types.HealthUnhealthy)
			w.reconcile()
			Expect(w.task(sick).DesiredState).To(Equal(types.ContainerShutdown))
			Expect(w.live()).To(ConsistOf("0@node-1", "0@node-2"))
			for _, t := range w.tasks() {
				if t.NodeID == "node-2" && t.ID != sick {
					Expect(t.Attempt).To(Equal(1))
				}
			}
		})
	})

	When("a node goes down", func() {
		It("replaces its tasks on the other nodes", func() {
			w := newWorld("node-1", "node-2", "node-3")
			w.apply(&fsm.CreateService{Service: service(3)})
			w.settle()
			w.nodeStatus("node-2", types.NodeDown)
			w.reconcile()
			Expect(w.live()).To(HaveLen(3))
			for _, l := range w.live() {
				Expect(l).NotTo(HaveSuffix("@node-2"))
			}
		})

		It("leaves a task pinned by a local volume waiting for its node", func() {
			w := newWorld("node-1", "node-2")
			w.apply(&fsm.CreateVolume{Volume: typestest.Volume("vol-1", "db-data", "node-2")})
			w.apply(&fsm.CreateService{Service: service(1, func(s *types.Service) {
				s.Volumes = []*types.VolumeMount{{Source: "db-data", Target: "/data"}}
			})})
			w.settle()
			Expect(w.live()).To(Equal([]string{"1@node-2"}))
			w.nodeStatus("node-2", types.NodeDown)
			Expect(w.reconcile().Plan).To(BeNil())
			Expect(w.live()).To(Equal([]string{"1@node-2"}))
		})
	})

	When("a node is removed with its tasks", func() {
		It("places the lost replicas again on the remaining nodes, in their slots", func() {
			w := newWorld("node-1", "node-2", "node-3")
			w.apply(&fsm.CreateService{Service: service(3)})
			w.settle()
			Expect(w.live()).To(ContainElement(HaveSuffix("@node-2")))
			w.apply(&fsm.DeleteNode{ID: "node-2"})
			Expect(w.live()).To(HaveLen(2))
			w.reconcile()
			Expect(w.live()).To(HaveLen(3))
			slots := map[int]bool{}
			for _, t := range w.tasks() {
				Expect(t.NodeID).To(BeElementOf("node-1", "node-3"))
				slots[t.Slot] = true
			}
			Expect(slots).To(Equal(map[int]bool{1: true, 2: true, 3: true}))
			w.settle()
		})

		It("runs a global service on the nodes that remain, and nothing more", func() {
			w := newWorld("node-1", "node-2")
			w.apply(&fsm.CreateService{Service: service(0, func(s *types.Service) { s.Mode = types.ModeGlobal })})
			w.settle()
			w.apply(&fsm.DeleteNode{ID: "node-2"})
			Expect(w.reconcile().Plan).To(BeNil())
			Expect(w.live()).To(Equal([]string{"0@node-1"}))
		})
	})

	It("moves tasks off a drained node", func() {
		w := newWorld("node-1", "node-2")
		w.apply(&fsm.CreateService{Service: service(2)})
		w.settle()
		n := typestest.Node("node-1")
		n.Availability = types.NodeDrain
		w.apply(&fsm.UpdateNode{Node: n})
		w.reconcile()
		Expect(w.live()).To(ConsistOf(HaveSuffix("@node-2"), HaveSuffix("@node-2")))
	})

	When("a service is global", func() {
		It("runs one task on each ready, active node that matches, and follows the nodes", func() {
			w := newWorld("node-1", "node-2", "node-3")
			n3 := typestest.Node("node-3")
			n3.Labels = map[string]string{"zone": "b"}
			w.apply(&fsm.UpdateNode{Node: n3})
			w.apply(&fsm.CreateService{Service: service(0, func(s *types.Service) {
				s.Mode = types.ModeGlobal
				s.Constraints = []string{"node.labels.zone==a"}
			})})
			w.settle()
			Expect(w.live()).To(ConsistOf("0@node-1", "0@node-2"))
			w.apply(&fsm.RegisterNode{Node: typestest.Node("node-4")})
			w.reconcile()
			Expect(w.live()).To(ConsistOf("0@node-1", "0@node-2", "0@node-4"))
			w.nodeStatus("node-2", types.NodeDown)
			Expect(w.reconcile().Plan).To(BeNil(), "a global task waits for its node")
		})
	})

	It("leaves a task it cannot place pending, with the reason, once", func() {
		w := newWorld()
		w.apply(&fsm.CreateService{Service: service(1)})
		w.reconcile()
		ts := w.tasks()
		Expect(ts).To(HaveLen(1))
		Expect(ts[0].NodeID).To(BeEmpty())
		Expect(ts[0].Error).To(ContainSubstring("no nodes"))
		Expect(w.reconcile().Plan).To(BeNil())
		w.apply(&fsm.RegisterNode{Node: typestest.Node("node-1")})
		w.reconcile()
		Expect(w.live()).To(Equal([]string{"1@node-1"}))
		Expect(w.tasks()[0].Error).To(BeEmpty())
	})

	It("creates a new local volume on the node of the first task, and keeps the replicas with it", func() {
		w := newWorld("node-1", "node-2", "node-3")
		w.apply(&fsm.CreateService{Service: service(3, func(s *types.Service) {
			s.Volumes = []*types.VolumeMount{{Source: "cache", Target: "/cache"}}
		})})
		w.reconcile()
		v, err := w.store.GetVolumeByName("cache")
		Expect(err).NotTo(HaveOccurred())
		Expect(v.NodeID).NotTo(BeEmpty())
		for _, t := range w.tasks() {
			Expect(t.NodeID).To(Equal(v.NodeID))
		}
	})

	It("deletes the tasks of a service that is gone", func() {
		w := newWorld("node-1")
		w.apply(&fsm.PlanTasks{Upsert: []*types.Container{typestest.Container("t-1", "svc-gone", "node-1")}})
		w.reconcile()
		Expect(w.tasks()).To(BeEmpty())
	})

	It("decides the same from the same cluster, time and seed", func() {
		mk := func() reconciler.Result {
			w := newWorld("node-1", "node-2", "node-3")
			w.apply(&fsm.CreateService{Service: service(5)})
			c, err := reconciler.Snapshot(w.store)
			Expect(err).NotTo(HaveOccurred())
			return reconciler.Reconcile(c, w.now, rand.New(rand.NewPCG(7, 7)))
		}
		Expect(mk()).To(Equal(mk()))
	})
})

var _ = Describe("Rolling update", func() {
	// images lists the images of the tasks meant to run, by slot.
	images := func(w *world) map[int]string {
		out := map[int]string{}
		for _, t := range w.tasks() {
			if t.DesiredState == types.ContainerRunning {
				Expect(out).NotTo(HaveKey(t.Slot), "one task meant to run per slot")
				out[t.Slot] = t.Image
			}
		}
		return out
	}
	update := func(w *world, mut func(*types.Service)) {
		GinkgoHelper()
		s, err := w.store.GetService("svc-1")
		Expect(err).NotTo(HaveOccurred())
		mut(s)
		w.apply(&fsm.UpdateService{Service: s})
	}

	It("replaces the tasks of a changed service one at a time, waiting the delay after each has started", func() {
		w := newWorld("node-1", "node-2", "node-3")
		w.apply(&fsm.CreateService{Service: service(3)}) // parallelism 1, delay 5s
		w.settle()
		update(w, func(s *types.Service) { s.Image = "nginx:1.28" })

		for done := 1; done <= 3; done++ {
			w.reconcile()
			Expect(w.reconcile().Plan).To(BeNil(), "the new task has not started: nothing more is replaced")
			n := 0
			for _, img := range images(w) {
				if img == "nginx:1.28" {
					n++
				}
			}
			Expect(n).To(Equal(done))
			Expect(images(w)).To(HaveLen(3))
			w.run()
			res := w.reconcile()
			if done < 3 {
				Expect(res.Plan).To(BeNil(), "the delay after the last start has not passed")
				Expect(res.Wake).To(Equal(w.now.Add(5 * time.Second)))
				w.now = w.now.Add(5 * time.Second)
			}
		}
		Expect(images(w)).To(Equal(map[int]string{1: "nginx:1.28", 2: "nginx:1.28", 3: "nginx:1.28"}))
		for _, t := range w.tasks() {
			if t.Image == "nginx:1.27" {
				Expect(t.DesiredState).To(Equal(types.ContainerShutdown))
			} else {
				Expect(t.Attempt).To(Equal(0), "an update is not a restart")
			}
		}
		Expect(w.reconcile().Plan).To(BeNil())
	})

	It("recreates every task at once when ForceUpdate is raised with parallelism 0, with the secrets' current versions", func() {
		w := newWorld("node-1", "node-2")
		sec := typestest.Secret("sec-1", "db-password")
		w.apply(&fsm.CreateSecret{Secret: sec})
		w.apply(&fsm.CreateService{Service: service(2, func(s *types.Service) {
			s.Secrets = []string{"sec-1"}
			s.UpdateConfig = &types.UpdateConfig{Parallelism: 0}
		})})
		w.settle()
		before := w.tasks()

		sec.Version = 2
		sec.Previous = []*types.SecretVersion{{Version: 1, Data: sec.Data}}
		w.apply(&fsm.UpdateSecret{Secret: sec})
		Expect(w.reconcile().Plan).To(BeNil(), "a new version alone replaces nothing")
		s, err := w.store.GetSecret("sec-1")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Previous).To(HaveLen(1), "version 1 is kept while tasks use it")

		update(w, func(s *types.Service) { s.ForceUpdate++ })
		w.reconcile()
		var fresh []*types.Container
		for _, t := range w.tasks() {
			if t.DesiredState == types.ContainerRunning {
				fresh = append(fresh, t)
			}
		}
		Expect(fresh).To(HaveLen(2))
		for _, t := range fresh {
			Expect(before).NotTo(ContainElement(HaveField("ID", t.ID)))
			Expect(t.ForceUpdate).To(Equal(uint64(1)))
			Expect(t.SecretVersionOf("sec-1")).To(Equal(2))
		}
		s, err = w.store.GetSecret("sec-1")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Previous).To(BeEmpty(), "no task to run uses version 1 any more")
		w.run()
		Expect(w.reconcile().Plan).To(BeNil())
	})

	It("replaces a global service's tasks on their own nodes", func() {
		w := newWorld("node-1", "node-2")
		w.apply(&fsm.CreateService{Service: service(0, func(s *types.Service) {
			s.Mode = types.ModeGlobal
			s.UpdateConfig = &types.UpdateConfig{Parallelism: 2}
		})})
		w.settle()
		update(w, func(s *types.Service) { s.Env = []string{"A=1"} })
		w.reconcile()
		nodes := map[string]bool{}
		for _, t := range w.tasks() {
			if t.DesiredState == types.ContainerRunning {
				Expect(t.Env).To(Equal([]string{"A=1"}))
				nodes[t.NodeID] = true
			}
		}
		Expect(nodes).To(Equal(map[string]bool{"node-1": true, "node-2": true}))
	})

	It("keeps a task pinned by its local volume on the volume's node through the update", func() {
		w := newWorld("node-1", "node-2")
		w.apply(&fsm.CreateService{Service: service(1, func(s *types.Service) {
			s.Volumes = []*types.VolumeMount{{Source: "data", Target: "/data"}}
		})})
		w.settle()
		v, err := w.store.GetVolumeByName("data")
		Expect(err).NotTo(HaveOccurred())
		update(w, func(s *types.Service) { s.ForceUpdate++ })
		w.reconcile()
		for _, t := range w.tasks() {
			Expect(t.NodeID).To(Equal(v.NodeID))
		}
	})
})
