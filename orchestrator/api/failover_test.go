package api_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Client failover", func() {
	var (
		ctx    context.Context
		ca     *testCA
		clock  *testClock
		admin  func(managers ...string) *api.Client
		waited *waits
	)

	BeforeEach(func() {
		ctx = context.Background()
		ca = newTestCA()
		clock = &testClock{t: typestest.Epoch}
		waited = &waits{}
		cert := ca.issue("ops", api.RoleAdmin)
		admin = func(managers ...string) *api.Client { return newClient(ca.clientTLS(&cert), waited, managers...) }
	})

	When("the manager asked is not the leader", func() {
		It("sends the request to the leader it names, and goes there first from then on", func() {
			leader := startServer(ca, clock, newFakeBackend("m2"))
			follower := startServer(ca, clock, newFakeBackend("m1"))
			follower.backend.set(func(b *fakeBackend) { b.leader = &api.Manager{ID: "m2", APIAddr: leader.addr()} })
			c := admin(follower.addr())

			created, err := c.CreateService(ctx, typestest.Service("", "web"))
			Expect(err).NotTo(HaveOccurred())
			Expect(leader.backend.store.GetService(created.ID)).To(HaveField("Name", "web"))
			Expect(follower.hits.Load()).To(Equal(int32(1)))

			Expect(c.ListServices(ctx, false)).To(HaveLen(1))
			Expect(follower.hits.Load()).To(Equal(int32(1)), "the leader is remembered")
			Expect(leader.hits.Load()).To(Equal(int32(2)))
			Expect(waited.all()).To(BeEmpty())
		})
	})

	When("the first manager is down", func() {
		It("fails over to the next", func() {
			up := startServer(ca, clock, newFakeBackend("m2"))
			c := admin(closedAddr(), up.addr())
			Expect(c.ListNodes(ctx, false)).To(BeEmpty())
			Expect(up.hits.Load()).To(Equal(int32(1)))
			Expect(waited.all()).To(BeEmpty())
		})
	})

	When("the connection breaks after the request was sent", func() {
		var hangUp, up *testServer

		BeforeEach(func() {
			hangUp = startHangUp(ca)
			up = startServer(ca, clock, newFakeBackend("m2"))
		})

		It("sends a retry-safe request to the next manager", func() {
			Expect(admin(hangUp.addr(), up.addr()).ListServices(ctx, false)).To(BeEmpty())
			Expect(up.hits.Load()).To(Equal(int32(1)))
		})

		It("does not send a create again, as it may have been applied", func() {
			_, err := admin(hangUp.addr(), up.addr()).CreateService(ctx, typestest.Service("", "web"))
			Expect(err).To(MatchError(api.ErrUnavailable))
			Expect(err).To(MatchError(ContainSubstring("may or may not have been applied")))
			Expect(hangUp.hits.Load()).To(Equal(int32(1)))
			Expect(up.hits.Load()).To(BeZero())
		})
	})

	When("there is no leader for a while", func() {
		It("waits, doubling from 50 ms, and succeeds once one is elected", func() {
			srv := startServer(ca, clock, newFakeBackend("m1"))
			srv.backend.set(func(b *fakeBackend) { b.noLeader = 3 })
			_, err := admin(srv.addr()).CreateService(ctx, typestest.Service("", "web"))
			Expect(err).NotTo(HaveOccurred(), "a no-leader answer means the write was not applied: safe to send again")
			Expect(waited.all()).To(Equal([]time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}))
			Expect(srv.backend.store.ListServices()).To(HaveLen(1))
		})

		It("asks the other managers before waiting", func() {
			cut := startServer(ca, clock, newFakeBackend("m1"))
			cut.backend.set(func(b *fakeBackend) { b.noLeader = 100 })
			leader := startServer(ca, clock, newFakeBackend("m2"))
			Expect(admin(cut.addr(), leader.addr()).ListNodes(ctx, false)).To(BeEmpty())
			Expect(waited.all()).To(BeEmpty())
		})

		It("gives up after about 5 s of waiting with an error wrapping ErrNoLeader", func() {
			srv := startServer(ca, clock, newFakeBackend("m1"))
			srv.backend.set(func(b *fakeBackend) { b.noLeader = 1000 })
			_, err := admin(srv.addr()).ListNodes(ctx, false)
			Expect(err).To(MatchError(api.ErrNoLeader))
			Expect(err).To(MatchError(ContainSubstring("gave up after waiting 5.1s")))
			Expect(sum(waited.all())).To(Equal(5100 * time.Millisecond))
		})
	})

	When("no manager answers", func() {
		It("backs off to 250 ms, gives up after about 5 s, and names the addresses tried", func() {
			a, b := closedAddr(), closedAddr()
			_, err := admin(a, b).ListNodes(ctx, false)
			Expect(err).To(MatchError(api.ErrUnavailable))
			Expect(err).To(MatchError(ContainSubstring("tried " + a + ", " + b)))
			Expect(err).To(MatchError(ContainSubstring("check --manager and that the managers run")))
			got := waited.all()
			Expect(got[:4]).To(Equal([]time.Duration{
				50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond,
			}))
			Expect(got[4:]).To(HaveEach(250 * time.Millisecond))
			Expect(sum(got)).To(BeNumerically(">=", 5*time.Second))
			Expect(sum(got)).To(BeNumerically("<", 6*time.Second))
		})

		It("stops waiting when its context ends", func() {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var asked int
			cert := ca.issue("ops", api.RoleAdmin)
			c, err := api.NewClient(api.ClientConfig{Managers: []string{closedAddr()}, TLS: ca.clientTLS(&cert),
				Wait: func(ctx context.Context, _ time.Duration) error {
					if asked++; asked == 2 {
						cancel()
					}
					return ctx.Err()
				}})
			Expect(err).NotTo(HaveOccurred())
			_, err = c.ListNodes(ctx, false)
			Expect(err).To(MatchError(context.Canceled))
			Expect(err).To(MatchError(api.ErrUnavailable), "with the reason it was waiting")
			Expect(asked).To(Equal(2))
		})
	})
})

func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}
