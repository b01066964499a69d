package api_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Handler authorization", func() {
	var (
		ctx context.Context
		ca  *testCA
		srv *testServer
		// as returns a client presenting a certificate for cn with role;
		// no certificate when role is "".
		as func(cn, role string) *api.Client
	)

	BeforeEach(func() {
		ctx = context.Background()
		ca = newTestCA()
		srv = startServer(ca, &testClock{t: typestest.Epoch}, newFakeBackend("m1"))
		Expect(srv.backend.store.UpdateNode(typestest.Node("n1"))).To(Succeed())
		as = func(cn, role string) *api.Client {
			if role == "" {
				return newClient(ca.clientTLS(nil), &waits{}, srv.addr())
			}
			cert := ca.issue(cn, role)
			return newClient(ca.clientTLS(&cert), &waits{}, srv.addr())
		}
	})

	// The calls the table makes; ctx is read when they run.
	listNodes := func(c *api.Client) error { _, err := c.ListNodes(ctx, false); return err }
	listServices := func(c *api.Client) error { _, err := c.ListServices(ctx, false); return err }
	deleteService := func(c *api.Client) error { return c.DeleteService(ctx, "web") }
	health := func(c *api.Client) error { _, err := c.Health(ctx, srv.addr()); return err }
	join := func(c *api.Client) error {
		_, err := c.Join(ctx, &api.JoinRequest{Token: "SWMTKN-worker-1", Role: api.RoleWorker, Hostname: "w2"})
		return err
	}
	heartbeatN1 := func(c *api.Client) error { _, err := c.Heartbeat(ctx, "n1", &api.HeartbeatRequest{}); return err }
	certificateN1 := func(c *api.Client) error { _, err := c.Certificate(ctx, "n1"); return err }
	promoteN1 := func(c *api.Client) error { return c.PromoteNode(ctx, "n1") }
	addManager := func(id string) func(*api.Client) error {
		return func(c *api.Client) error {
			return c.AddManager(ctx, &api.AddManagerRequest{NodeID: id, RaftAddr: "10.0.0.2:4243"})
		}
	}

	DescribeTable("lets each endpoint be called only with the certificate it needs",
		func(cn, role string, call func(*api.Client) error, want error, says string) {
			err := call(as(cn, role))
			if want == nil {
				Expect(err).NotTo(HaveOccurred())
				return
			}
			Expect(err).To(MatchError(want))
			Expect(err).To(MatchError(ContainSubstring(says)))
		},
		Entry("admin endpoint without a certificate", "", "", listNodes,
			api.ErrUnauthorized, "GET /v1/nodes needs a certificate of role admin, and the request came without a client certificate"),
		Entry("admin endpoint with a worker certificate", "n1", api.RoleWorker, listServices,
			api.ErrForbidden, `needs a certificate of role admin; the certificate of "n1" has role "worker"`),
		Entry("admin endpoint with a manager certificate", "m2", api.RoleManager, deleteService,
			api.ErrForbidden, "role admin"),
		Entry("admin endpoint with an admin certificate", "ops", api.RoleAdmin, listServices, nil, ""),
		Entry("health without a certificate", "", "", health, nil, ""),
		Entry("join without a certificate", "", "", join, nil, ""),
		Entry("heartbeat of a worker for itself", "n1", api.RoleWorker, heartbeatN1, nil, ""),
		Entry("heartbeat of a manager for itself", "n1", api.RoleManager, heartbeatN1, nil, ""),
		Entry("heartbeat for another node", "n2", api.RoleWorker, heartbeatN1,
			api.ErrForbidden, `issued to node n1; this certificate is issued to "n2"`),
		Entry("heartbeat with an admin certificate", "n1", api.RoleAdmin, heartbeatN1,
			api.ErrForbidden, "role worker or manager"),
		Entry("heartbeat without a certificate", "", "", heartbeatN1,
			api.ErrUnauthorized, "without a client certificate"),
		Entry("a certificate for the node itself", "n1", api.RoleWorker, certificateN1, nil, ""),
		Entry("a certificate for another node", "n2", api.RoleManager, certificateN1,
			api.ErrForbidden, "issued to node n1"),
		Entry("a promotion by an admin", "ops", api.RoleAdmin, promoteN1, nil, ""),
		Entry("a promotion by the node itself", "n1", api.RoleWorker, promoteN1,
			api.ErrForbidden, "role admin"),
		Entry("a manager adding itself", "m2", api.RoleManager, addManager("m2"), nil, ""),
		Entry("a manager adding another", "m2", api.RoleManager, addManager("m3"),
			api.ErrForbidden, "issued to node m3"),
		Entry("a worker adding itself as a manager", "m2", api.RoleWorker, addManager("m2"),
			api.ErrForbidden, "role manager"),
		Entry("adding a manager without a certificate", "", "", addManager("m2"),
			api.ErrUnauthorized, "role manager"),
	)

	When("the client's certificate is not the cluster's", func() {
		It("is refused, without waiting out the retries", func() {
			other := newTestCA()
			cert := other.issue("ops", api.RoleAdmin)
			tlsCfg := ca.clientTLS(&cert) // trusts the cluster, presents a stranger's certificate
			second := startServer(ca, &testClock{}, newFakeBackend("m2"))
			w := &waits{}
			c := newClient(tlsCfg, w, srv.addr(), second.addr())
			_, err := c.ListNodes(ctx, false)
			Expect(err).To(MatchError(api.ErrUnauthorized))
			Expect(err).To(MatchError(ContainSubstring("refused")))
			Expect(second.hits.Load()).To(BeZero())
			// TLS 1.3 tells the client of the refusal by an alert after its
			// handshake; on a loaded machine the connection's reset can
			// overtake the alert, and that attempt looks like a manager
			// down. The next one reads the alert: a round or two, never the
			// whole retry budget.
			Expect(sum(w.all())).To(BeNumerically("<", time.Second))
		})
	})
})
