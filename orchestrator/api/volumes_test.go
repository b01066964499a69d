package api_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Volumes", func() {
	var (
		ctx    context.Context
		ca     *testCA
		clock  *testClock
		b      *fakeBackend
		srv    *testServer
		client *api.Client
	)
	// mounting is a service of replicas tasks that mounts volume.
	mounting := func(name, volume string, replicas int) *types.Service {
		s := typestest.Service("svc-"+name, name)
		s.Ports, s.Replicas = nil, replicas
		s.Volumes = []*types.VolumeMount{{Source: volume, Target: "/data"}}
		return s
	}
	applied := func() uint64 {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.applied
	}

	BeforeEach(func() {
		ctx = context.Background()
		ca = newTestCA()
		clock = &testClock{t: typestest.Epoch}
		b = newFakeBackend("m1")
		srv = startServer(ca, clock, b)
		cert := ca.issue("ops", api.RoleAdmin)
		client = newClient(ca.clientTLS(&cert), &waits{}, srv.addr())
		w1 := typestest.Node("node-1")
		w1.Hostname = "worker-1"
		Expect(b.store.UpdateNode(w1)).To(Succeed())
		Expect(b.store.UpdateNode(typestest.Node("node-2"))).To(Succeed())
	})

	When("created", func() {
		It("are local, unplaced and unmeasured by default, and listed and inspected by name or ID", func() {
			info, err := client.CreateVolume(ctx, &api.VolumeSpec{Name: "db-data", Labels: map[string]string{"env": "production"}})
			Expect(err).NotTo(HaveOccurred())
			Expect(info.ID).To(HaveLen(20))
			Expect(info.Driver).To(Equal("local"))
			Expect(info.MountPoint).To(Equal("/var/lib/warren/volumes/db-data"))
			Expect(info.NodeID).To(BeEmpty())
			Expect(info.CreatedAt).To(BeTemporally("==", typestest.Epoch))

			stored, err := b.store.GetVolume(info.ID)
			Expect(err).NotTo(HaveOccurred())
			Expect(stored.Labels).To(Equal(map[string]string{"env": "production"}))
			Expect(stored.Options).NotTo(BeNil())

			got, err := client.GetVolume(ctx, "db-data")
			Expect(err).NotTo(HaveOccurred())
			Expect(got.ID).To(Equal(info.ID))
			Expect(got.Measured()).To(BeFalse())
			Expect(got.UsedBy).To(BeEmpty())
			Expect(got.UsedByTasks).To(BeEmpty())
			Expect(client.GetVolume(ctx, info.ID)).To(HaveField("Name", "db-data"))

			_, err = client.CreateVolume(ctx, &api.VolumeSpec{Name: "app-data", Driver: "local"})
			Expect(err).NotTo(HaveOccurred())
			list, err := client.ListVolumes(ctx, false)
			Expect(err).NotTo(HaveOccurred())
			Expect(list).To(HaveExactElements(HaveField("Name", "app-data"), HaveField("Name", "db-data")))

			_, err = client.GetVolume(ctx, "nope")
			Expect(err).To(MatchError(state.ErrNotFound))
			Expect(err).To(MatchError(ContainSubstring("warren volume ls")))
		})

		DescribeTable("are pinned to the node given by ID or hostname",
			func(node, id, host string) {
				info, err := client.CreateVolume(ctx, &api.VolumeSpec{Name: "db-data", Node: node})
				Expect(err).NotTo(HaveOccurred())
				Expect(info.NodeID).To(Equal(id))
				Expect(info.Node).To(Equal(host))
				Expect(b.store.GetVolume(info.ID)).To(HaveField("NodeID", id))
				Expect(client.GetVolume(ctx, "db-data")).To(HaveField("Node", host))
			},
			Entry("by hostname", "worker-1", "node-1", "worker-1"),
			Entry("by ID", "node-2", "node-2", "node-2"),
		)

		DescribeTable("refuse bad input, storing nothing",
			func(spec *api.VolumeSpec, sentinel error, message string) {
				_, err := client.CreateVolume(ctx, spec)
				Expect(err).To(MatchError(sentinel))
				Expect(err).To(MatchError(ContainSubstring(message)))
				Expect(b.store.ListVolumes()).To(BeEmpty())
			},
			Entry("a bad name", &api.VolumeSpec{Name: "DB_data"}, types.ErrInvalid, "not a valid name"),
			Entry("no name", &api.VolumeSpec{}, types.ErrInvalid, "not a valid name"),
			Entry("a driver that does not exist yet", &api.VolumeSpec{Name: "shared", Driver: "nfs"}, types.ErrInvalid, `volume driver "nfs" is not supported: use local`),
			Entry("a label without a key", &api.VolumeSpec{Name: "data", Labels: map[string]string{"": "x"}}, types.ErrInvalid, "label key"),
			Entry("a node that does not exist", &api.VolumeSpec{Name: "data", Node: "worker-9"}, state.ErrNotFound, `no node with ID or hostname "worker-9"`),
		)

		It("refuse a name already used", func() {
			_, err := client.CreateVolume(ctx, &api.VolumeSpec{Name: "data"})
			Expect(err).NotTo(HaveOccurred())
			_, err = client.CreateVolume(ctx, &api.VolumeSpec{Name: "data"})
			Expect(err).To(MatchError(state.ErrNameTaken))
			Expect(b.store.ListVolumes()).To(HaveLen(1))
		})
	})

	When("used", func() {
		It("name the services that mount them and their tasks meant to run", func() {
			_, err := client.CreateVolume(ctx, &api.VolumeSpec{Name: "db-data", Node: "node-1"})
			Expect(err).NotTo(HaveOccurred())
			Expect(fsm.Apply(b.store, &fsm.CreateService{Service: mounting("postgres", "db-data", 1)})).To(Succeed())
			Expect(fsm.Apply(b.store, &fsm.CreateService{Service: mounting("backup", "db-data", 1)})).To(Succeed())
			for _, t := range []struct {
				id      string
				desired types.ContainerState
				mounts  bool
			}{{"t-run", types.ContainerRunning, true}, {"t-old", types.ContainerShutdown, true}, {"t-other", types.ContainerRunning, false}} {
				c := typestest.Container(t.id, "svc-postgres", "node-1")
				c.DesiredState = t.desired
				if t.mounts {
					c.Mounts = []*types.VolumeMount{{Source: "db-data", Target: "/data"}}
				}
				Expect(b.store.UpdateContainer(c)).To(Succeed())
			}

			info, err := client.GetVolume(ctx, "db-data")
			Expect(err).NotTo(HaveOccurred())
			Expect(info.UsedBy).To(Equal([]string{"backup", "postgres"}))
			Expect(info.UsedByTasks).To(Equal([]string{"t-run"}))
			list, err := client.ListVolumes(ctx, true)
			Expect(err).NotTo(HaveOccurred())
			Expect(list).To(HaveExactElements(HaveField("UsedByTasks", []string{"t-run"})))
		})
	})

	When("deleted", func() {
		var id string
		BeforeEach(func() {
			info, err := client.CreateVolume(ctx, &api.VolumeSpec{Name: "db-data", Node: "worker-1"})
			Expect(err).NotTo(HaveOccurred())
			id = info.ID
		})

		It("go when unused, saying where their data was", func() {
			gone, err := client.DeleteVolume(ctx, "db-data", false)
			Expect(err).NotTo(HaveOccurred())
			Expect(gone).To(Equal(&api.VolumeDeletion{ID: id, Name: "db-data", NodeID: "node-1", Node: "worker-1", Stopped: []string{}}))
			Expect(b.store.ListVolumes()).To(BeEmpty())
			_, err = client.DeleteVolume(ctx, id, false)
			Expect(err).To(MatchError(state.ErrNotFound))
		})

		It("are refused while a service mounts them, naming it and the fix", func() {
			Expect(fsm.Apply(b.store, &fsm.CreateService{Service: mounting("postgres", "db-data", 1)})).To(Succeed())
			_, err := client.DeleteVolume(ctx, "db-data", false)
			Expect(err).To(MatchError(fsm.ErrInUse))
			Expect(err).To(MatchError(ContainSubstring("volume db-data is used by service postgres")))
			Expect(err).To(MatchError(ContainSubstring("--force")))
			Expect(b.store.GetVolume(id)).NotTo(BeNil())
		})

		It("with force, scale the replicated services that mount them to 0, and say so", func() {
			Expect(fsm.Apply(b.store, &fsm.CreateService{Service: mounting("postgres", "db-data", 3)})).To(Succeed())
			Expect(fsm.Apply(b.store, &fsm.CreateService{Service: mounting("idle", "db-data", 0)})).To(Succeed())
			gone, err := client.DeleteVolume(ctx, "db-data", true)
			Expect(err).NotTo(HaveOccurred())
			Expect(gone.Stopped).To(Equal([]string{"postgres"}), "idle ran nothing to stop")
			Expect(b.store.GetServiceByName("postgres")).To(HaveField("Replicas", 0))
			Expect(b.store.ListVolumes()).To(BeEmpty())
		})

		It("with force, are still refused while a global service mounts them", func() {
			g := mounting("agent", "db-data", 0)
			g.Mode = types.ModeGlobal
			Expect(fsm.Apply(b.store, &fsm.CreateService{Service: g})).To(Succeed())
			_, err := client.DeleteVolume(ctx, "db-data", true)
			Expect(err).To(MatchError(fsm.ErrInUse))
			Expect(err).To(MatchError(ContainSubstring("global service agent")))
			Expect(b.store.GetVolume(id)).NotTo(BeNil())
		})
	})

	When("a node reports", func() {
		var (
			node  *api.Client
			vol   *api.VolumeInfo
			other *api.VolumeInfo
		)
		BeforeEach(func() {
			cert := ca.issue("node-1", api.RoleWorker)
			node = newClient(ca.clientTLS(&cert), &waits{}, srv.addr())
			var err error
			vol, err = client.CreateVolume(ctx, &api.VolumeSpec{Name: "db-data", Node: "node-1"})
			Expect(err).NotTo(HaveOccurred())
			other, err = client.CreateVolume(ctx, &api.VolumeSpec{Name: "elsewhere", Node: "node-2"})
			Expect(err).NotTo(HaveOccurred())
			_, err = client.CreateVolume(ctx, &api.VolumeSpec{Name: "unplaced"})
			Expect(err).NotTo(HaveOccurred())
		})

		It("learns the volumes pinned to it, and which of those it holds are gone", func() {
			ans, err := node.SyncVolumes(ctx, "node-1", &api.VolumeSync{Held: []string{vol.ID, "vol-deleted", other.ID}})
			Expect(err).NotTo(HaveOccurred())
			Expect(ans.Volumes).To(Equal([]agent.Volume{{ID: vol.ID, Name: "db-data"}}))
			Expect(ans.Gone).To(ConsistOf(other.ID, "vol-deleted"), "a volume on another node is gone from this one")
		})

		It("records a size only when it changed", func() {
			before := applied()
			clock.advance(time.Minute)
			_, err := node.SyncVolumes(ctx, "node-1", &api.VolumeSync{Sizes: map[string]int64{vol.ID: 1234, other.ID: 99}})
			Expect(err).NotTo(HaveOccurred())
			Expect(applied()).To(Equal(before + 1))
			info, err := client.GetVolume(ctx, "db-data")
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Size).To(Equal(int64(1234)))
			Expect(info.SizeAt).To(BeTemporally("==", typestest.Epoch.Add(time.Minute)))
			Expect(client.GetVolume(ctx, "elsewhere")).To(HaveField("Measured()", BeFalse()), "node-1 cannot size node-2's volume")

			clock.advance(time.Minute)
			_, err = node.SyncVolumes(ctx, "node-1", &api.VolumeSync{Sizes: map[string]int64{vol.ID: 1234}})
			Expect(err).NotTo(HaveOccurred())
			Expect(applied()).To(Equal(before+1), "the same size again writes nothing")
			Expect(client.GetVolume(ctx, "db-data")).To(HaveField("SizeAt", BeTemporally("==", typestest.Epoch.Add(time.Minute))))
		})

		It("records an empty volume once, so that it shows as measured", func() {
			before := applied()
			_, err := node.SyncVolumes(ctx, "node-1", &api.VolumeSync{Sizes: map[string]int64{vol.ID: 0}})
			Expect(err).NotTo(HaveOccurred())
			Expect(applied()).To(Equal(before + 1))
			Expect(client.GetVolume(ctx, "db-data")).To(HaveField("Measured()", BeTrue()))
		})

		It("is answered by a follower from its state, unless some volume it holds looks gone", func() {
			b.set(func(b *fakeBackend) { b.leader = &api.Manager{ID: "m9"} })
			ans, err := node.SyncVolumes(ctx, "node-1", &api.VolumeSync{Held: []string{vol.ID}})
			Expect(err).NotTo(HaveOccurred())
			Expect(ans.Volumes).To(HaveLen(1))
			_, err = node.SyncVolumes(ctx, "node-1", &api.VolumeSync{Held: []string{"vol-deleted"}})
			Expect(err).To(MatchError(api.ErrNotLeader), "only the leader may say a volume is gone")
		})

		It("may report for itself only", func() {
			_, err := node.SyncVolumes(ctx, "node-2", &api.VolumeSync{Sizes: map[string]int64{other.ID: 5}})
			Expect(err).To(MatchError(api.ErrForbidden))
			Expect(client.GetVolume(ctx, "elsewhere")).To(HaveField("Measured()", BeFalse()))
		})
	})
})
