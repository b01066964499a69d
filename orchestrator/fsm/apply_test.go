package fsm_test

import (
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Apply", func() {
	var s state.Store
	BeforeEach(func() { s = state.NewMemory() })

	apply := func(c fsm.Command) error {
		// Through the log encoding, as raft applies it.
		b, err := fsm.Encode(c)
		Expect(err).NotTo(HaveOccurred())
		return fsm.ApplyBytes(s, b)
	}
	must := func(cs ...fsm.Command) {
		GinkgoHelper()
		for _, c := range cs {
			Expect(apply(c)).To(Succeed(), "%s", c.Kind())
		}
	}

	When("creating", func() {
		DescribeTable("refuses an ID that is taken",
			func(c fsm.Command) {
				must(c)
				Expect(errors.Is(apply(c), fsm.ErrExists)).To(BeTrue())
			},
			Entry("service", &fsm.CreateService{Service: typestest.Service("svc-1", "web")}),
			Entry("volume", &fsm.CreateVolume{Volume: typestest.Volume("vol-1", "data", "")}),
			Entry("secret", &fsm.CreateSecret{Secret: typestest.Secret("sec-1", "pw")}),
			Entry("network", &fsm.CreateNetwork{Network: typestest.Network("net-1", "front")}),
		)

		It("refuses a name that is taken, and an invalid record", func() {
			must(&fsm.CreateService{Service: typestest.Service("svc-1", "web")})
			Expect(errors.Is(apply(&fsm.CreateService{Service: typestest.Service("svc-2", "web")}), state.ErrNameTaken)).To(BeTrue())
			bad := typestest.Service("svc-3", "Bad Name")
			Expect(errors.Is(apply(&fsm.CreateService{Service: bad}), types.ErrInvalid)).To(BeTrue())
			Expect(errors.Is(apply(&fsm.CreateService{}), types.ErrInvalid)).To(BeTrue())
		})
	})

	When("updating", func() {
		DescribeTable("refuses what does not exist",
			func(c fsm.Command) { Expect(errors.Is(apply(c), state.ErrNotFound)).To(BeTrue()) },
			Entry("service", &fsm.UpdateService{Service: typestest.Service("svc-1", "web")}),
			Entry("volume", &fsm.UpdateVolume{Volume: typestest.Volume("vol-1", "data", "")}),
			Entry("secret", &fsm.UpdateSecret{Secret: typestest.Secret("sec-1", "pw")}),
			Entry("network", &fsm.UpdateNetwork{Network: typestest.Network("net-1", "front")}),
			Entry("node", &fsm.UpdateNode{Node: typestest.Node("node-1")}),
			Entry("node status", &fsm.SetNodeStatus{NodeID: "node-1", Status: types.NodeDown}),
		)

		It("keeps a local volume on its node", func() {
			must(&fsm.CreateVolume{Volume: typestest.Volume("vol-1", "data", "node-1")})
			err := apply(&fsm.UpdateVolume{Volume: typestest.Volume("vol-1", "data", "node-2")})
			Expect(errors.Is(err, fsm.ErrConflict)).To(BeTrue())
			Expect(err).To(MatchError(ContainSubstring("its data cannot move")))
		})

		It("records a node's status and heartbeat", func() {
			must(&fsm.RegisterNode{Node: typestest.Node("node-1")},
				&fsm.SetNodeStatus{NodeID: "node-1", Status: types.NodeDown, LastHeartbeat: at})
			n, err := s.GetNode("node-1")
			Expect(err).NotTo(HaveOccurred())
			Expect(n.Status).To(Equal(types.NodeDown))
			Expect(n.LastHeartbeat).To(Equal(at))
		})
	})

	When("deleting", func() {
		It("removes a service with its tasks", func() {
			must(&fsm.CreateService{Service: typestest.Service("svc-1", "web")},
				&fsm.PlanTasks{Upsert: []*types.Container{
					typestest.Container("t-1", "svc-1", "node-1"), typestest.Container("t-2", "svc-1", ""),
				}},
				&fsm.DeleteService{ID: "svc-1"})
			cs, err := s.ListContainers()
			Expect(err).NotTo(HaveOccurred())
			Expect(cs).To(BeEmpty())
			Expect(errors.Is(apply(&fsm.DeleteService{ID: "svc-1"}), state.ErrNotFound)).To(BeTrue())
		})

		DescribeTable("refuses what a service uses, naming the service",
			func(create fsm.Command, use func(*types.Service), del fsm.Command) {
				svc := typestest.Service("svc-1", "postgres")
				use(svc)
				must(create, &fsm.CreateService{Service: svc})
				err := apply(del)
				Expect(errors.Is(err, fsm.ErrInUse)).To(BeTrue())
				Expect(err).To(MatchError(ContainSubstring("is used by service postgres")))
				must(&fsm.DeleteService{ID: "svc-1"}, del)
			},
			Entry("volume", &fsm.CreateVolume{Volume: typestest.Volume("vol-1", "db-data", "")},
				func(s *types.Service) { s.Volumes = []*types.VolumeMount{{Source: "db-data", Target: "/data"}} },
				&fsm.DeleteVolume{ID: "vol-1"}),
			Entry("secret", &fsm.CreateSecret{Secret: typestest.Secret("sec-1", "db-password")},
				func(s *types.Service) { s.Secrets = []string{"sec-1"} },
				&fsm.DeleteSecret{ID: "sec-1"}),
			Entry("network", &fsm.CreateNetwork{Network: typestest.Network("net-1", "backend")},
				func(s *types.Service) { s.Networks = []string{"net-1"} },
				&fsm.DeleteNetwork{ID: "net-1"}),
		)
	})

	When("deleting with force", func() {
		It("stops the replicated services that mount the volume, in the same step", func() {
			a, b := typestest.Service("svc-1", "db"), typestest.Service("svc-2", "other")
			a.Replicas = 3
			a.Volumes = []*types.VolumeMount{{Source: "db-data", Target: "/data"}}
			must(&fsm.CreateVolume{Volume: typestest.Volume("vol-1", "db-data", "")},
				&fsm.CreateService{Service: a}, &fsm.CreateService{Service: b})
			must(&fsm.DeleteVolume{ID: "vol-1", Force: true})
			Expect(s.GetVolume("vol-1")).Error().To(MatchError(state.ErrNotFound))
			Expect(s.GetService("svc-1")).To(HaveField("Replicas", 0))
			Expect(s.GetService("svc-2")).To(HaveField("Replicas", b.Replicas))
		})

		It("refuses a volume a global service mounts, changing nothing", func() {
			a, g := typestest.Service("svc-1", "db"), typestest.Service("svc-2", "agent")
			a.Volumes = []*types.VolumeMount{{Source: "db-data", Target: "/data"}}
			g.Mode, g.Replicas, g.Volumes = types.ModeGlobal, 0, a.Volumes
			must(&fsm.CreateVolume{Volume: typestest.Volume("vol-1", "db-data", "")},
				&fsm.CreateService{Service: a}, &fsm.CreateService{Service: g})
			err := apply(&fsm.DeleteVolume{ID: "vol-1", Force: true})
			Expect(errors.Is(err, fsm.ErrInUse)).To(BeTrue())
			Expect(err).To(MatchError(ContainSubstring("global service agent")))
			Expect(s.GetVolume("vol-1")).NotTo(BeNil())
			Expect(s.GetService("svc-1")).To(HaveField("Replicas", a.Replicas))
		})

		It("takes the secret out of the services that use it", func() {
			a := typestest.Service("svc-1", "api")
			a.Secrets = []string{"sec-1", "sec-2"}
			must(&fsm.CreateSecret{Secret: typestest.Secret("sec-1", "db-password")},
				&fsm.CreateSecret{Secret: typestest.Secret("sec-2", "api-key")},
				&fsm.CreateService{Service: a})
			must(&fsm.DeleteSecret{ID: "sec-1", Force: true})
			Expect(s.GetSecret("sec-1")).Error().To(MatchError(state.ErrNotFound))
			Expect(s.GetService("svc-1")).To(HaveField("Secrets", []string{"sec-2"}))
		})
	})

	When("a node reports its volumes", func() {
		It("records their directory and size, and nothing else of them; another node's or a deleted one is skipped", func() {
			mine, theirs := typestest.Volume("vol-1", "db-data", "node-1"), typestest.Volume("vol-2", "logs", "node-2")
			mine.Labels = map[string]string{"env": "prod"}
			must(&fsm.CreateVolume{Volume: mine}, &fsm.CreateVolume{Volume: theirs})
			at := typestest.Epoch.Add(time.Minute)
			must(&fsm.ReportVolumes{NodeID: "node-1", Volumes: []fsm.VolumeReport{
				{ID: "vol-1", MountPath: "/srv/volumes/db-data", Size: 42, SizeAt: at},
				{ID: "vol-2", Size: 7, SizeAt: at},
				{ID: "vol-9", Size: 1, SizeAt: at},
			}})
			v, err := s.GetVolume("vol-1")
			Expect(err).NotTo(HaveOccurred())
			Expect(v.MountPath).To(Equal("/srv/volumes/db-data"))
			Expect(v.Size).To(BeEquivalentTo(42))
			Expect(v.SizeAt).To(BeTemporally("==", at))
			Expect(v.Labels).To(Equal(map[string]string{"env": "prod"}))
			Expect(s.GetVolume("vol-2")).To(HaveField("Size", BeZero()))

			must(&fsm.ReportVolumes{NodeID: "node-1", Volumes: []fsm.VolumeReport{{ID: "vol-1", Size: 50, SizeAt: at.Add(time.Second)}}})
			Expect(s.GetVolume("vol-1")).To(HaveField("MountPath", "/srv/volumes/db-data"), "an empty path leaves it")
			Expect(errors.Is(apply(&fsm.ReportVolumes{NodeID: "node-1", Volumes: []fsm.VolumeReport{{ID: "vol-1", MountPath: "relative"}}}), types.ErrInvalid)).To(BeTrue())
		})
	})

	When("applying a batch", func() {
		It("applies every command, in order", func() {
			svc := typestest.Service("svc-1", "db")
			svc.Volumes = []*types.VolumeMount{{Source: "db-data", Target: "/data"}}
			must(&fsm.Batch{Commands: []fsm.Command{
				&fsm.CreateVolume{Volume: typestest.Volume("vol-1", "db-data", "")},
				&fsm.CreateService{Service: svc},
			}})
			Expect(s.GetVolume("vol-1")).NotTo(BeNil())
			Expect(s.GetService("svc-1")).NotTo(BeNil())
		})

		It("stores nothing when one command fails, naming it", func() {
			must(&fsm.CreateService{Service: typestest.Service("svc-9", "web")})
			err := apply(&fsm.Batch{Commands: []fsm.Command{
				&fsm.CreateVolume{Volume: typestest.Volume("vol-1", "db-data", "")},
				&fsm.CreateService{Service: typestest.Service("svc-2", "web")},
			}})
			Expect(errors.Is(err, state.ErrNameTaken)).To(BeTrue())
			Expect(err).To(MatchError(ContainSubstring("batch command 1 (CreateService)")))
			Expect(s.GetVolume("vol-1")).Error().To(MatchError(state.ErrNotFound))
		})
	})

	When("a secret has older versions", func() {
		task := func(id string, v int, desired types.ContainerState) *types.Container {
			t := typestest.Container(id, "svc-1", "node-1")
			t.Secrets, t.DesiredState = []string{"sec-1"}, desired
			if v > 1 {
				t.SecretVersions = map[string]int{"sec-1": v}
			}
			return t
		}
		versions := func() []int {
			GinkgoHelper()
			sec, err := s.GetSecret("sec-1")
			Expect(err).NotTo(HaveOccurred())
			out := []int{}
			for _, p := range sec.Previous {
				out = append(out, p.Version)
			}
			return append(out, sec.CurrentVersion())
		}
		update := func(v int, previous ...int) {
			GinkgoHelper()
			sec := typestest.Secret("sec-1", "db-password")
			sec.Version = v
			for _, p := range previous {
				sec.Previous = append(sec.Previous, &types.SecretVersion{Version: p, Data: []byte{byte(p)}})
			}
			must(&fsm.UpdateSecret{Secret: sec})
		}

		It("keeps a version while a task to run uses it, and drops it when none does", func() {
			must(&fsm.RegisterNode{Node: typestest.Node("node-1")},
				&fsm.CreateSecret{Secret: typestest.Secret("sec-1", "db-password")},
				&fsm.PlanTasks{Upsert: []*types.Container{task("t-1", 1, types.ContainerRunning)}})
			update(2, 1)
			Expect(versions()).To(Equal([]int{1, 2}))
			update(3, 1, 2)
			Expect(versions()).To(Equal([]int{1, 3}), "no task uses version 2")
			must(&fsm.PlanTasks{Upsert: []*types.Container{
				task("t-1", 1, types.ContainerShutdown), task("t-2", 3, types.ContainerRunning),
			}})
			Expect(versions()).To(Equal([]int{3}), "the plan retired the last task of version 1")
		})

		It("gives a new task of a plan the current version when its own was dropped after the plan was made", func() {
			must(&fsm.RegisterNode{Node: typestest.Node("node-1")},
				&fsm.CreateSecret{Secret: typestest.Secret("sec-1", "db-password")})
			update(2, 1) // no task uses version 1: dropped
			Expect(versions()).To(Equal([]int{2}))
			must(&fsm.PlanTasks{Upsert: []*types.Container{task("t-1", 1, types.ContainerRunning)}})
			t, err := s.GetContainer("t-1")
			Expect(err).NotTo(HaveOccurred())
			Expect(t.SecretVersionOf("sec-1")).To(Equal(2))
		})

		It("refuses an update made from a version that is no longer the secret's", func() {
			must(&fsm.CreateSecret{Secret: typestest.Secret("sec-1", "db-password")})
			next := typestest.Secret("sec-1", "db-password")
			next.Version = 2
			must(&fsm.UpdateSecret{Secret: next, IfVersion: 1})
			err := apply(&fsm.UpdateSecret{Secret: next, IfVersion: 1})
			Expect(errors.Is(err, fsm.ErrConflict)).To(BeTrue())
			Expect(err).To(MatchError(ContainSubstring("is at version 2, not 1")))
		})
	})

	When("deleting a node", func() {
		BeforeEach(func() {
			finished := typestest.Container("t-3", "svc-1", "node-1")
			finished.DesiredState, finished.ActualState = types.ContainerShutdown, types.ContainerShutdown
			must(&fsm.RegisterNode{Node: typestest.Node("node-1")},
				&fsm.RegisterNode{Node: typestest.Node("node-2")},
				&fsm.PlanTasks{Upsert: []*types.Container{
					typestest.Container("t-1", "svc-1", "node-1"), typestest.Container("t-2", "svc-1", "node-2"),
					finished, typestest.Container("t-4", "svc-1", ""),
				}})
		})

		taskIDs := func() []string {
			GinkgoHelper()
			cs, err := s.ListContainers()
			Expect(err).NotTo(HaveOccurred())
			ids := []string{}
			for _, c := range cs {
				ids = append(ids, c.ID)
			}
			return ids
		}

		It("removes the node and every task assigned to it, finished or not", func() {
			must(&fsm.DeleteNode{ID: "node-1"})
			_, err := s.GetNode("node-1")
			Expect(errors.Is(err, state.ErrNotFound)).To(BeTrue())
			Expect(taskIDs()).To(Equal([]string{"t-2", "t-4"}))
			cs, err := s.ListContainersByNode("node-1")
			Expect(err).NotTo(HaveOccurred())
			Expect(cs).To(BeEmpty())
			_, err = s.GetNode("node-2")
			Expect(err).NotTo(HaveOccurred())
		})

		It("refuses a node that does not exist, as the other deletes do", func() {
			err := apply(&fsm.DeleteNode{ID: "node-9"})
			Expect(errors.Is(err, state.ErrNotFound)).To(BeTrue())
			Expect(err).To(MatchError(ContainSubstring(`no node with ID "node-9"`)))
		})

		It("refuses while a volume is pinned to the node, naming it, and stores nothing", func() {
			must(&fsm.CreateVolume{Volume: typestest.Volume("vol-1", "db-data", "node-1")},
				&fsm.CreateVolume{Volume: typestest.Volume("vol-2", "elsewhere", "node-2")},
				&fsm.CreateVolume{Volume: typestest.Volume("vol-3", "unplaced", "")})
			err := apply(&fsm.DeleteNode{ID: "node-1"})
			Expect(errors.Is(err, fsm.ErrInUse)).To(BeTrue(), "%v", err)
			Expect(err).To(MatchError(ContainSubstring("node node-1 holds volume db-data")))
			Expect(err).To(MatchError(ContainSubstring("delete the volume first")))
			_, err = s.GetNode("node-1")
			Expect(err).NotTo(HaveOccurred())
			Expect(taskIDs()).To(Equal([]string{"t-1", "t-2", "t-3", "t-4"}))

			must(&fsm.DeleteVolume{ID: "vol-1"}, &fsm.DeleteNode{ID: "node-1"})
			Expect(taskIDs()).To(Equal([]string{"t-2", "t-4"}))
		})
	})

	When("setting the cluster record", func() {
		It("creates it, then replaces it", func() {
			c := typestest.Cluster("cluster-1")
			must(&fsm.SetCluster{Cluster: c})
			c.WorkerToken = "worker-token-rotated"
			must(&fsm.SetCluster{Cluster: c})
			got, err := s.GetCluster()
			Expect(err).NotTo(HaveOccurred())
			Expect(got.ID).To(Equal("cluster-1"))
			Expect(got.WorkerToken).To(Equal("worker-token-rotated"))
		})

		It("refuses to change the cluster's ID, keeping the record", func() {
			must(&fsm.SetCluster{Cluster: typestest.Cluster("cluster-1")})
			err := apply(&fsm.SetCluster{Cluster: typestest.Cluster("cluster-2")})
			Expect(errors.Is(err, fsm.ErrConflict)).To(BeTrue(), "%v", err)
			Expect(err).To(MatchError(ContainSubstring("the cluster's ID cannot change")))
			got, err := s.GetCluster()
			Expect(err).NotTo(HaveOccurred())
			Expect(got.ID).To(Equal("cluster-1"))
		})

		DescribeTable("refuses a record that is missing or invalid",
			func(c *types.Cluster) {
				err := apply(&fsm.SetCluster{Cluster: c})
				Expect(errors.Is(err, types.ErrInvalid)).To(BeTrue(), "%v", err)
				_, err = s.GetCluster()
				Expect(errors.Is(err, state.ErrNotFound)).To(BeTrue())
			},
			Entry("missing", nil),
			Entry("one token for both roles", func() *types.Cluster {
				c := typestest.Cluster("cluster-1")
				c.ManagerToken = c.WorkerToken
				return c
			}()),
		)
	})

	When("workers report their tasks", func() {
		BeforeEach(func() {
			must(&fsm.PlanTasks{Upsert: []*types.Container{
				typestest.Container("t-1", "svc-1", "node-1"), typestest.Container("t-2", "svc-1", "node-2"),
			}})
		})

		report := func(st fsm.TaskStatus) *types.Container {
			GinkgoHelper()
			must(&fsm.ReportTasks{Statuses: []fsm.TaskStatus{st}})
			t, err := s.GetContainer(st.TaskID)
			Expect(err).NotTo(HaveOccurred())
			return t
		}

		It("records what the task's node observed", func() {
			t := report(fsm.TaskStatus{TaskID: "t-1", NodeID: "node-1", ActualState: types.ContainerRunning, ContainerID: "ctr-1", Health: types.HealthHealthy, StartedAt: at})
			Expect(t.ActualState).To(Equal(types.ContainerRunning))
			Expect(t.ContainerID).To(Equal("ctr-1"))
			Expect(t.HealthStatus).To(Equal(types.HealthHealthy))
			Expect(t.StartedAt).To(Equal(at))
		})

		DescribeTable("ignores reports that would rewrite history",
			func(first types.ContainerState, then fsm.TaskStatus, want types.ContainerState) {
				report(fsm.TaskStatus{TaskID: "t-1", NodeID: "node-1", ActualState: first})
				Expect(report(then).ActualState).To(Equal(want))
			},
			Entry("running after failed", types.ContainerFailed,
				fsm.TaskStatus{TaskID: "t-1", NodeID: "node-1", ActualState: types.ContainerRunning}, types.ContainerFailed),
			Entry("shutdown after complete", types.ContainerComplete,
				fsm.TaskStatus{TaskID: "t-1", NodeID: "node-1", ActualState: types.ContainerShutdown}, types.ContainerComplete),
			Entry("from another node", types.ContainerRunning,
				fsm.TaskStatus{TaskID: "t-1", NodeID: "node-2", ActualState: types.ContainerFailed}, types.ContainerRunning),
			Entry("running then failed is news", types.ContainerRunning,
				fsm.TaskStatus{TaskID: "t-1", NodeID: "node-1", ActualState: types.ContainerFailed}, types.ContainerFailed),
		)

		It("refuses a report in a state that does not exist, storing none of it", func() {
			err := apply(&fsm.ReportTasks{Statuses: []fsm.TaskStatus{
				{TaskID: "t-2", NodeID: "node-2", ActualState: types.ContainerRunning},
				{TaskID: "t-1", NodeID: "node-1", ActualState: "zombie"},
			}})
			Expect(errors.Is(err, types.ErrInvalid)).To(BeTrue())
			Expect(err).To(MatchError(ContainSubstring(`state "zombie"`)))
			t, err := s.GetContainer("t-2")
			Expect(err).NotTo(HaveOccurred())
			Expect(t.ActualState).To(Equal(types.ContainerPending))
		})

		It("skips tasks deleted meanwhile", func() {
			must(&fsm.ReportTasks{Statuses: []fsm.TaskStatus{
				{TaskID: "gone", NodeID: "node-1", ActualState: types.ContainerRunning},
				{TaskID: "t-2", NodeID: "node-2", ActualState: types.ContainerRunning},
			}})
			t, err := s.GetContainer("t-2")
			Expect(err).NotTo(HaveOccurred())
			Expect(t.ActualState).To(Equal(types.ContainerRunning))
		})
	})

	When("a plan is committed", func() {
		mounting := func(id, node, volume string) *types.Container {
			t := typestest.Container(id, "svc-1", node)
			t.Mounts = []*types.VolumeMount{{Source: volume, Target: "/data"}}
			return t
		}

		It("creates a lazily placed volume on the task's node, with the task", func() {
			must(&fsm.PlanTasks{
				Upsert: []*types.Container{mounting("t-1", "node-2", "data")},
				Pin:    []*types.Volume{typestest.Volume("vol-data", "data", "node-2")},
			})
			v, err := s.GetVolumeByName("data")
			Expect(err).NotTo(HaveOccurred())
			Expect(v.NodeID).To(Equal("node-2"))
		})

		It("pins an existing unplaced volume, keeping its ID", func() {
			must(&fsm.CreateVolume{Volume: typestest.Volume("vol-1", "data", "")},
				&fsm.PlanTasks{Pin: []*types.Volume{typestest.Volume("vol-data", "data", "node-3")}})
			v, err := s.GetVolumeByName("data")
			Expect(err).NotTo(HaveOccurred())
			Expect(v.ID).To(Equal("vol-1"))
			Expect(v.NodeID).To(Equal("node-3"))
		})

		DescribeTable("refuses a plan that breaks an invariant, storing none of it",
			func(setup []fsm.Command, plan *fsm.PlanTasks, message string) {
				must(setup...)
				before, err := s.ListContainers()
				Expect(err).NotTo(HaveOccurred())
				err = apply(plan)
				Expect(errors.Is(err, fsm.ErrConflict)).To(BeTrue(), "%v", err)
				Expect(err).To(MatchError(ContainSubstring(message)))
				after, err := s.ListContainers()
				Expect(err).NotTo(HaveOccurred())
				Expect(after).To(Equal(before))
			},
			Entry("a task moving node",
				[]fsm.Command{&fsm.PlanTasks{Upsert: []*types.Container{typestest.Container("t-1", "svc-1", "node-1")}}},
				&fsm.PlanTasks{Upsert: []*types.Container{typestest.Container("t-2", "svc-1", "node-1"), typestest.Container("t-1", "svc-1", "node-2")}},
				"cannot move"),
			Entry("a task away from its local volume",
				[]fsm.Command{&fsm.CreateVolume{Volume: typestest.Volume("vol-1", "data", "node-1")}},
				&fsm.PlanTasks{Upsert: []*types.Container{typestest.Container("t-0", "svc-1", "node-2"), mounting("t-1", "node-2", "data")}},
				"mounts local volume data on node node-1"),
			Entry("a volume pinned elsewhere meanwhile",
				[]fsm.Command{&fsm.CreateVolume{Volume: typestest.Volume("vol-1", "data", "node-1")}},
				&fsm.PlanTasks{
					Upsert: []*types.Container{mounting("t-1", "node-2", "data")},
					Pin:    []*types.Volume{typestest.Volume("vol-data", "data", "node-2")},
				},
				"already on node node-1"),
		)

		It("stores nothing of a plan with an invalid task", func() {
			bad := typestest.Container("t-2", "svc-1", "node-1")
			bad.ActualState = "lost"
			err := apply(&fsm.PlanTasks{Upsert: []*types.Container{typestest.Container("t-1", "svc-1", "node-1"), bad}})
			Expect(errors.Is(err, types.ErrInvalid)).To(BeTrue())
			cs, _ := s.ListContainers()
			Expect(cs).To(BeEmpty())
		})
	})

	It("makes the same state from the same commands", func() {
		other := state.NewMemory()
		for _, c := range everyCommand() {
			errA := apply(c)
			errB := fsm.Apply(other, c)
			Expect(errA == nil).To(Equal(errB == nil), "%s", c.Kind())
		}
		for _, list := range []func(state.Store) (any, error){
			func(st state.Store) (any, error) { return st.ListNodes() },
			func(st state.Store) (any, error) { return st.ListServices() },
			func(st state.Store) (any, error) { return st.ListContainers() },
			func(st state.Store) (any, error) { return st.ListVolumes() },
			func(st state.Store) (any, error) { return st.ListSecrets() },
			func(st state.Store) (any, error) { return st.ListNetworks() },
			func(st state.Store) (any, error) { return st.GetCluster() },
		} {
			a, err := list(s)
			Expect(err).NotTo(HaveOccurred())
			b, err := list(other)
			Expect(err).NotTo(HaveOccurred())
			Expect(a).To(Equal(b))
		}
	})
})
