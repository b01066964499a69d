package api_test

import (
	"context"
	"crypto/tls"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Client", func() {
	var (
		ctx    context.Context
		ca     *testCA
		clock  *testClock
		b      *fakeBackend
		srv    *testServer
		admin  *api.Client
		waited *waits
	)

	BeforeEach(func() {
		ctx = context.Background()
		ca = newTestCA()
		clock = &testClock{t: typestest.Epoch}
		b = newFakeBackend("m1")
		srv = startServer(ca, clock, b)
		waited = &waits{}
		cert := ca.issue("admin", api.RoleAdmin)
		admin = newClient(ca.clientTLS(&cert), waited, srv.addr())
	})

	When("asking about the cluster", func() {
		It("gets a manager's health without a certificate, and the cluster info with one", func() {
			anon := newClient(ca.clientTLS(nil), waited, srv.addr())
			h, err := anon.Health(ctx, srv.addr())
			Expect(err).NotTo(HaveOccurred())
			Expect(h).To(Equal(&api.Health{ID: "m1", Leader: true}))

			info, err := admin.Cluster(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(info.ID).To(Equal("cluster-1"))
			Expect(info.CreatedAt).To(BeTemporally("==", typestest.Epoch))
			Expect(info.Managers).To(HaveLen(1))
		})
	})

	When("a node joins", func() {
		It("joins with the worker token, through the package-level Join, and is listed", func() {
			resp, err := api.Join(ctx, srv.addr(), ca.clientTLS(nil),
				&api.JoinRequest{Token: "SWMTKN-worker-1", Role: api.RoleWorker, Hostname: "w1", Addr: "10.0.0.5"})
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.NodeID).To(HaveLen(20))
			Expect(resp.Cert).To(Equal([]byte("cert")))

			n, err := admin.GetNode(ctx, "w1")
			Expect(err).NotTo(HaveOccurred())
			Expect(n.ID).To(Equal(resp.NodeID))
			Expect(n.Address).To(Equal("10.0.0.5"))
		})

		It("is refused with a wrong token", func() {
			_, err := admin.Join(ctx, &api.JoinRequest{Token: "SWMTKN-nope", Role: api.RoleManager, Hostname: "m2"})
			Expect(err).To(MatchError(api.ErrUnauthorized))
			Expect(err).To(MatchError(ContainSubstring("not this cluster's manager token")))
		})

		It("becomes a voter when a manager asks for itself", func() {
			cert := ca.issue("m2", api.RoleManager)
			m2 := newClient(ca.clientTLS(&cert), waited, srv.addr())
			Expect(m2.AddManager(ctx, &api.AddManagerRequest{NodeID: "m2", RaftAddr: "10.0.0.2:4243"})).To(Succeed())
			Expect(b.managers).To(Equal([]*api.AddManagerRequest{{NodeID: "m2", RaftAddr: "10.0.0.2:4243"}}))
		})
	})

	When("handling join tokens", func() {
		It("reads and rotates them", func() {
			tok, err := admin.JoinToken(ctx, api.RoleWorker)
			Expect(err).NotTo(HaveOccurred())
			Expect(tok).To(Equal("SWMTKN-worker-1"))
			rotated, err := admin.RotateJoinToken(ctx, api.RoleWorker)
			Expect(err).NotTo(HaveOccurred())
			Expect(rotated).NotTo(Equal(tok))
			Expect(admin.JoinToken(ctx, api.RoleWorker)).To(Equal(rotated))
		})

		It("names the two roles for any other", func() {
			_, err := admin.JoinToken(ctx, api.RoleAdmin)
			Expect(err).To(MatchError(api.ErrBadRequest))
			Expect(err).To(MatchError(ContainSubstring("use worker or manager")))
		})
	})

	When("managing nodes", func() {
		BeforeEach(func() {
			for _, n := range []*types.Node{typestest.Node("n1"), typestest.Node("n2"), typestest.Node("n3")} {
				Expect(b.store.UpdateNode(n)).To(Succeed())
			}
			n3, _ := b.store.GetNode("n3")
			n3.Hostname = "n2"
			Expect(b.store.UpdateNode(n3)).To(Succeed())
		})

		It("lists them, linearizably or stale", func() {
			b.set(func(b *fakeBackend) { b.leader = &api.Manager{ID: "m9"} })
			nodes, err := admin.ListNodes(ctx, true)
			Expect(err).NotTo(HaveOccurred(), "a follower answers a stale read")
			Expect(nodes).To(HaveEach(HaveField("ID", BeElementOf("n1", "n2", "n3"))))
			Expect(nodes).To(HaveLen(3))
			b.set(func(b *fakeBackend) { b.leader = nil })
			nodes, err = admin.ListNodes(ctx, false)
			Expect(err).NotTo(HaveOccurred())
			Expect(nodes).To(HaveLen(3))
		})

		It("finds a node by ID, by unique hostname, and refuses an ambiguous hostname", func() {
			Expect(admin.GetNode(ctx, "n1")).To(HaveField("Hostname", "n1"))
			n, err := admin.GetNode(ctx, "n2")
			Expect(err).NotTo(HaveOccurred())
			Expect(n.ID).To(Equal("n2"), "an ID wins over a hostname")
			n3, _ := b.store.GetNode("n3")
			n3.Hostname = "db"
			Expect(b.store.UpdateNode(n3)).To(Succeed())
			n2, _ := b.store.GetNode("n2")
			n2.Hostname = "db"
			Expect(b.store.UpdateNode(n2)).To(Succeed())
			_, err = admin.GetNode(ctx, "db")
			Expect(err).To(MatchError(api.ErrBadRequest))
			Expect(err).To(MatchError(ContainSubstring(`hostname "db" is ambiguous: nodes n2, n3 have it`)))
			_, err = admin.GetNode(ctx, "nope")
			Expect(err).To(MatchError(state.ErrNotFound))
		})

		It("updates availability and labels, and clears labels with an empty map", func() {
			drain := types.NodeDrain
			n, err := admin.UpdateNode(ctx, "n1", &api.NodeUpdate{Availability: &drain})
			Expect(err).NotTo(HaveOccurred())
			Expect(n.Availability).To(Equal(types.NodeDrain))
			Expect(n.Labels).To(Equal(map[string]string{"zone": "a"}), "nil labels are left alone")
			_, err = admin.UpdateNode(ctx, "n1", &api.NodeUpdate{Labels: map[string]string{"disk": "ssd"}})
			Expect(err).NotTo(HaveOccurred())
			Expect(b.store.GetNode("n1")).To(HaveField("Labels", Equal(map[string]string{"disk": "ssd"})))
			_, err = admin.UpdateNode(ctx, "n1", &api.NodeUpdate{Labels: map[string]string{}})
			Expect(err).NotTo(HaveOccurred())
			stored, _ := b.store.GetNode("n1")
			Expect(stored.Labels).To(BeEmpty())
			Expect(stored.Availability).To(Equal(types.NodeDrain))
		})

		It("refuses an availability the types do not know", func() {
			bogus := types.NodeAvailability("asleep")
			_, err := admin.UpdateNode(ctx, "n1", &api.NodeUpdate{Availability: &bogus})
			Expect(err).To(MatchError(types.ErrInvalid))
		})

		It("promotes and demotes a node, and issues it a certificate for its role", func() {
			Expect(admin.PromoteNode(ctx, "n1")).To(Succeed())
			stored, _ := b.store.GetNode("n1")
			Expect(stored.Role).To(Equal(types.RoleManager))
			Expect(admin.PromoteNode(ctx, "n1")).To(MatchError(fsm.ErrConflict))
			Expect(admin.DemoteNode(ctx, "n1")).To(Succeed())
			stored, _ = b.store.GetNode("n1")
			Expect(stored.Role).To(Equal(types.RoleWorker))
			Expect(admin.DemoteNode(ctx, "nobody")).To(MatchError(state.ErrNotFound))
			cert := ca.issue("n1", api.RoleWorker)
			resp, err := newClient(ca.clientTLS(&cert), waited, srv.addr()).Certificate(ctx, "n1")
			Expect(err).NotTo(HaveOccurred())
			Expect(string(resp.Cert)).To(Equal("cert-worker"))
		})

		It("removes a node that is up only with force", func() {
			err := admin.RemoveNode(ctx, "n1", false)
			Expect(err).To(MatchError(fsm.ErrConflict))
			Expect(admin.RemoveNode(ctx, "n1", true)).To(Succeed())
			_, err = b.store.GetNode("n1")
			Expect(err).To(MatchError(state.ErrNotFound))
		})
	})

	When("a worker heartbeats", func() {
		var worker *api.Client

		BeforeEach(func() {
			Expect(b.store.UpdateNode(typestest.Node("n1"))).To(Succeed())
			Expect(fsm.Apply(b.store, &fsm.PlanTasks{Upsert: []*types.Container{typestest.Container("t1", "s1", "n1")}})).To(Succeed())
			cert := ca.issue("n1", api.RoleWorker)
			worker = newClient(ca.clientTLS(&cert), waited, srv.addr())
		})

		It("reports its tasks and gets its assignments", func() {
			st := fsm.TaskStatus{TaskID: "t1", ActualState: types.ContainerRunning, ContainerID: "c1", StartedAt: typestest.Epoch}
			resp, err := worker.Heartbeat(ctx, "n1", &api.HeartbeatRequest{Statuses: []fsm.TaskStatus{st}})
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.Assignments).To(HaveLen(1))
			Expect(resp.Assignments[0].Task.ActualState).To(Equal(types.ContainerRunning), "the report, stamped with the node, is applied")
			Expect(resp.Committed).To(HaveExactElements(HaveField("NodeID", "n1")))
			Expect(resp.Managers).To(HaveLen(1))
		})

		It("may not report another node's tasks", func() {
			st := fsm.TaskStatus{TaskID: "t1", NodeID: "n2", ActualState: types.ContainerFailed}
			_, err := worker.Heartbeat(ctx, "n1", &api.HeartbeatRequest{Statuses: []fsm.TaskStatus{st}})
			Expect(err).To(MatchError(api.ErrForbidden))
		})
	})

	When("listing containers", func() {
		BeforeEach(func() {
			Expect(fsm.Apply(b.store, &fsm.PlanTasks{Upsert: []*types.Container{
				typestest.Container("t1", "s1", "n1"),
				typestest.Container("t2", "s1", "n2"),
				typestest.Container("t3", "s2", "n1"),
			}})).To(Succeed())
		})

		DescribeTable("filters by service and node",
			func(service, node string, want ...string) {
				tasks, err := admin.ListContainers(ctx, service, node, false)
				Expect(err).NotTo(HaveOccurred())
				ids := make([]string, len(tasks))
				for i, t := range tasks {
					ids[i] = t.ID
				}
				Expect(ids).To(Equal(want))
			},
			Entry("all", "", "", "t1", "t2", "t3"),
			Entry("one service", "s1", "", "t1", "t2"),
			Entry("one node", "", "n1", "t1", "t3"),
			Entry("both", "s1", "n1", "t1"),
			Entry("none match", "s2", "n2"),
		)
	})

	When("managing services", func() {
		It("creates, reads, replaces and deletes one", func() {
			in := typestest.Service("", "web")
			in.CreatedAt = time.Time{}
			created, err := admin.CreateService(ctx, in)
			Expect(err).NotTo(HaveOccurred())
			Expect(created.ID).To(MatchRegexp(`^[a-z2-7]{20}$`))
			Expect(created.CreatedAt).To(BeTemporally("==", typestest.Epoch))
			Expect(created.UpdatedAt).To(BeTemporally("==", typestest.Epoch))

			Expect(admin.GetService(ctx, "web")).To(HaveField("ID", created.ID))
			Expect(admin.GetService(ctx, created.ID)).To(HaveField("Name", "web"))
			Expect(admin.ListServices(ctx, false)).To(HaveExactElements(HaveField("ID", created.ID)))

			clock.advance(time.Hour)
			change := typestest.Service("", "web")
			change.Replicas = 5
			updated, err := admin.UpdateService(ctx, change)
			Expect(err).NotTo(HaveOccurred())
			Expect(updated.ID).To(Equal(created.ID))
			Expect(updated.CreatedAt).To(BeTemporally("==", typestest.Epoch), "kept from the stored record")
			Expect(updated.UpdatedAt).To(BeTemporally("==", typestest.Epoch.Add(time.Hour)))
			Expect(b.store.GetService(created.ID)).To(HaveField("Replicas", 5))

			Expect(admin.DeleteService(ctx, "web")).To(Succeed())
			_, err = admin.GetService(ctx, "web")
			Expect(err).To(MatchError(state.ErrNotFound))
			Expect(err).To(MatchError(ContainSubstring(`no service with ID or name "web"`)))
		})

		It("lists them from a follower's own state when stale reads are asked for", func() {
			_, err := admin.CreateService(ctx, typestest.Service("svc-1", "web"))
			Expect(err).NotTo(HaveOccurred())
			b.set(func(b *fakeBackend) { b.leader = &api.Manager{ID: "m9"} })
			Expect(admin.ListServices(ctx, true)).To(HaveExactElements(HaveField("ID", "svc-1")))
			_, err = admin.ListServices(ctx, false)
			Expect(err).To(MatchError(api.ErrNotLeader), "a linearizable read needs the leader, which names no address")
		})

		It("keeps the ID a client gives, and refuses it twice", func() {
			created, err := admin.CreateService(ctx, typestest.Service("svc-1", "web"))
			Expect(err).NotTo(HaveOccurred())
			Expect(created.ID).To(Equal("svc-1"))
			_, err = admin.CreateService(ctx, typestest.Service("svc-1", "api"))
			Expect(err).To(MatchError(fsm.ErrExists))
		})

		It("refuses a taken name and an invalid service", func() {
			_, err := admin.CreateService(ctx, typestest.Service("", "web"))
			Expect(err).NotTo(HaveOccurred())
			_, err = admin.CreateService(ctx, typestest.Service("", "web"))
			Expect(err).To(MatchError(state.ErrNameTaken))
			bad := typestest.Service("", "api")
			bad.Image = ""
			_, err = admin.CreateService(ctx, bad)
			Expect(err).To(MatchError(types.ErrInvalid))
			Expect(err).To(MatchError(ContainSubstring("Image")))
		})

		It("refuses a replacement whose ID is another record's", func() {
			_, err := admin.CreateService(ctx, typestest.Service("svc-1", "web"))
			Expect(err).NotTo(HaveOccurred())
			_, err = admin.CreateService(ctx, typestest.Service("svc-2", "api"))
			Expect(err).NotTo(HaveOccurred())
			_, err = admin.UpdateService(ctx, typestest.Service("svc-2", "web"))
			Expect(err).To(MatchError(state.ErrNameTaken), "svc-2 renamed to a taken name")
			_, err = admin.UpdateService(ctx, typestest.Service("svc-3", "web"))
			Expect(err).To(MatchError(state.ErrNotFound))
		})
	})

	// Volumes have endpoints of their own: see volumes_test.go.

	When("managing networks", func() {
		It("creates, reads, replaces and deletes one", func() {
			n, err := admin.CreateNetwork(ctx, typestest.Network("", "backend"))
			Expect(err).NotTo(HaveOccurred())
			Expect(n.ID).To(HaveLen(20))
			Expect(admin.GetNetwork(ctx, "backend")).To(HaveField("Subnet", "10.0.1.0/24"))
			n.Subnet, n.Gateway = "10.0.2.0/24", "10.0.2.1"
			_, err = admin.UpdateNetwork(ctx, n)
			Expect(err).NotTo(HaveOccurred())
			Expect(admin.ListNetworks(ctx, false)).To(HaveExactElements(HaveField("Subnet", "10.0.2.0/24")))
			Expect(admin.DeleteNetwork(ctx, "backend")).To(Succeed())
			Expect(admin.ListNetworks(ctx, false)).To(BeEmpty())
		})
	})

	When("it is given its managers", func() {
		It("replaces them", func() {
			Expect(admin.Managers()).To(Equal([]string{srv.addr()}))
			admin.SetManagers([]string{"10.0.0.1:4242", "10.0.0.2:4242"})
			Expect(admin.Managers()).To(Equal([]string{"10.0.0.1:4242", "10.0.0.2:4242"}))
		})
	})

	When("configured without what it needs", func() {
		DescribeTable("refuses to start, saying what is missing",
			func(cfg api.ClientConfig, want string) {
				_, err := api.NewClient(cfg)
				Expect(err).To(MatchError(ContainSubstring(want)))
			},
			Entry("no manager", api.ClientConfig{TLS: &tls.Config{}, Wait: (&waits{}).wait}, "--manager"),
			Entry("no TLS", api.ClientConfig{Managers: []string{"a:1"}, Wait: (&waits{}).wait}, "TLS"),
			Entry("no Wait", api.ClientConfig{Managers: []string{"a:1"}, TLS: &tls.Config{}}, "Wait"),
		)
	})
})
