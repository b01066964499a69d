package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/clock"
	"github.com/warren-orchestrator/warren/backends/pki"
	"github.com/warren-orchestrator/warren/daemon"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

func freeAddr() string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().String()
}

// proc is one node running in this process, as `warren cluster init`,
// `warren manager join` or `warren worker join` would run it.
type proc struct {
	cfg    daemon.Config
	node   *daemon.Node
	cancel context.CancelFunc
	done   chan error
}

func (p *proc) stop() error {
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		return err
	case <-time.After(20 * time.Second):
		Fail("node did not stop within 20 s")
		return nil
	}
}

func nodeConfig(dir string) daemon.Config {
	return daemon.Config{
		DataDir: dir, APIAddr: freeAddr(), RaftAddr: freeAddr(), Hostname: filepath.Base(dir),
		Runtime:    daemon.RuntimeSimulated,
		Heartbeat:  50 * time.Millisecond,
		Dispatcher: dispatcher.Config{TTL: 500 * time.Millisecond, Grace: 500 * time.Millisecond},
	}
}

// launch runs fn (Init, Join or Start) until the node is ready, or fails
// with the error fn returned.
func launch(cfg daemon.Config, fn func(context.Context, daemon.Config) error) (*proc, error) {
	GinkgoHelper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{cfg: cfg, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan *daemon.Node, 1)
	cfg.Ready = func(n *daemon.Node) { ready <- n }
	go func() { p.done <- fn(ctx, cfg) }()
	select {
	case p.node = <-ready:
		DeferCleanup(p.stop)
		return p, nil
	case err := <-p.done:
		cancel()
		return nil, err
	case <-time.After(30 * time.Second):
		cancel()
		Fail("node not ready within 30 s")
		return nil, nil
	}
}

func mustLaunch(cfg daemon.Config, fn func(context.Context, daemon.Config) error) *proc {
	GinkgoHelper()
	p, err := launch(cfg, fn)
	Expect(err).NotTo(HaveOccurred())
	return p
}

// admin is the CLI's client: the admin certificate init wrote.
func admin(initDir string, managers ...string) *api.Client {
	GinkgoHelper()
	dir := filepath.Join(initDir, daemon.PKIDir)
	pool, err := pki.LoadCAPool(dir)
	Expect(err).NotTo(HaveOccurred())
	cert, err := pki.LoadCert(dir, daemon.AdminCertName)
	Expect(err).NotTo(HaveOccurred())
	c, err := api.NewClient(api.ClientConfig{Managers: managers, TLS: pki.ClientConfig(pool, cert), Wait: clock.Wall{}.Wait})
	Expect(err).NotTo(HaveOccurred())
	return c
}

func token(c *api.Client, role string) string {
	GinkgoHelper()
	t, err := c.JoinToken(context.Background(), role)
	Expect(err).NotTo(HaveOccurred())
	return t
}

func joiner(addr, tok string, asManager bool) func(context.Context, daemon.Config) error {
	return func(ctx context.Context, cfg daemon.Config) error { return daemon.Join(ctx, cfg, addr, tok, asManager) }
}

func service(name string) *types.Service {
	return &types.Service{Name: name, Image: "busybox", Replicas: 1, Mode: types.ModeReplicated, DeployStrategy: types.DeployRolling}
}

// statusOf polls a node's status as the leader has it.
func statusOf(c *api.Client, id string) func() types.NodeStatus {
	return func() types.NodeStatus {
		n, err := c.GetNode(context.Background(), id)
		Expect(err).NotTo(HaveOccurred())
		return n.Status
	}
}

var _ = Describe("A cluster of daemons", Label("integ"), func() {
	var (
		root  string
		first *proc
		ctx   context.Context
	)
	BeforeEach(func() {
		root = GinkgoT().TempDir()
		ctx = context.Background()
		first = mustLaunch(nodeConfig(filepath.Join(root, "m1")), daemon.Init)
	})

	It("starts as one manager that leads, runs tasks and serves the admin", func() {
		c := admin(first.cfg.DataDir, first.cfg.APIAddr)
		info, err := c.Cluster(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Leader).To(Equal(first.node.Identity.NodeID))
		Expect(info.Managers).To(HaveLen(1))
		Expect(info.Managers[0].Reachable).To(BeTrue())
		Expect(info.CADigest).To(HavePrefix("sha256:"))

		Eventually(statusOf(c, first.node.Identity.NodeID), 10*time.Second, 50*time.Millisecond).Should(Equal(types.NodeReady))

		_, err = c.CreateService(ctx, service("web"))
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() []types.ContainerState {
			tasks, err := c.ListContainers(ctx, "", "", false)
			Expect(err).NotTo(HaveOccurred())
			var states []types.ContainerState
			for _, t := range tasks {
				states = append(states, t.ActualState)
			}
			return states
		}, 10*time.Second, 50*time.Millisecond).Should(Equal([]types.ContainerState{types.ContainerRunning}))
	})

	It("renews node certificates before they expire, and keeps working past the first ones' end", func() {
		cfg := nodeConfig(filepath.Join(root, "short"))
		cfg.CertValidity = 3 * time.Second
		mustLaunch(cfg, daemon.Init)
		c := admin(cfg.DataDir, cfg.APIAddr)
		wcfg := nodeConfig(filepath.Join(root, "short-worker"))
		wcfg.CertValidity = cfg.CertValidity
		w := mustLaunch(wcfg, joiner(cfg.APIAddr, token(c, "worker"), false))
		notAfter := func(dir string) func() time.Time {
			return func() time.Time {
				cert, err := daemon.LoadNodeCert(dir)
				Expect(err).NotTo(HaveOccurred())
				return cert.Leaf.NotAfter
			}
		}
		firstEnd := notAfter(cfg.DataDir)()
		workerEnd := notAfter(wcfg.DataDir)()
		time.Sleep(time.Until(firstEnd.Add(time.Second)))
		Expect(notAfter(cfg.DataDir)()).To(BeTemporally(">", firstEnd))
		Expect(notAfter(wcfg.DataDir)()).To(BeTemporally(">", workerEnd))
		// The manager's server certificate is the renewed one, or the
		// admin client would refuse it; the worker still beats.
		_, err := c.CreateService(ctx, service("late"))
		Expect(err).NotTo(HaveOccurred())
		Eventually(statusOf(c, w.node.Identity.NodeID), 5*time.Second, 50*time.Millisecond).Should(Equal(types.NodeReady))
		Consistently(statusOf(c, w.node.Identity.NodeID), 2*time.Second, 100*time.Millisecond).Should(Equal(types.NodeReady))
	})

	It("refuses an init on an address in use, writing nothing", func() {
		cfg := nodeConfig(filepath.Join(root, "taken"))
		cfg.APIAddr = first.cfg.APIAddr
		_, err := launch(cfg, daemon.Init)
		Expect(err).To(MatchError(ContainSubstring(first.cfg.APIAddr + " is not free")))
		_, statErr := os.Stat(cfg.DataDir)
		Expect(os.IsNotExist(statErr)).To(BeTrue(), "nothing written")
	})

	It("refuses to demote the only manager", func() {
		c := admin(first.cfg.DataDir, first.cfg.APIAddr)
		err := c.DemoteNode(ctx, first.node.Identity.NodeID)
		Expect(err).To(MatchError(fsm.ErrInUse))
		Expect(err.Error()).To(ContainSubstring("only manager"))
	})

	It("refuses a second init on a used data directory, changing nothing", func() {
		before, err := os.ReadFile(filepath.Join(first.cfg.DataDir, daemon.IdentityFile))
		Expect(err).NotTo(HaveOccurred())
		cfg := nodeConfig(first.cfg.DataDir)
		_, err = launch(cfg, daemon.Init)
		Expect(err).To(MatchError(daemon.ErrInitialized))
		Expect(err.Error()).To(ContainSubstring("warren start --data-dir"))
		after, err := os.ReadFile(filepath.Join(first.cfg.DataDir, daemon.IdentityFile))
		Expect(err).NotTo(HaveOccurred())
		Expect(after).To(Equal(before))
	})

	When("managers and a worker join", func() {
		var (
			procs []*proc
			c     *api.Client
		)
		BeforeEach(func() {
			c = admin(first.cfg.DataDir, first.cfg.APIAddr)
			procs = []*proc{first}
			for i := 2; i <= 3; i++ {
				procs = append(procs, mustLaunch(nodeConfig(filepath.Join(root, fmt.Sprintf("m%d", i))),
					joiner(first.cfg.APIAddr, token(c, "manager"), true)))
			}
			procs = append(procs, mustLaunch(nodeConfig(filepath.Join(root, "w1")),
				joiner(first.cfg.APIAddr, token(c, "worker"), false)))
		})

		It("replicates to three managers and takes writes through any of them", func() {
			info, err := c.Cluster(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Managers).To(HaveLen(3))
			for _, m := range info.Managers {
				Expect(m.Reachable).To(BeTrue(), "%s: %s", m.ID, m.Error)
				Expect(m.Voter).To(BeTrue())
			}
			for i, p := range procs[:3] {
				// A client that knows only this manager: a follower
				// points it at the leader.
				only := admin(first.cfg.DataDir, p.cfg.APIAddr)
				_, err := only.CreateService(ctx, service(fmt.Sprintf("svc%d", i)))
				Expect(err).NotTo(HaveOccurred())
				list, err := only.ListServices(ctx, false)
				Expect(err).NotTo(HaveOccurred())
				Expect(list).To(HaveLen(i + 1))
			}
			Eventually(func() int {
				nodes, err := c.ListNodes(ctx, false)
				Expect(err).NotTo(HaveOccurred())
				ready := 0
				for _, n := range nodes {
					if n.Status == types.NodeReady {
						ready++
					}
				}
				return ready
			}, 10*time.Second, 50*time.Millisecond).Should(Equal(4))
		})

		It("fails over when the leader stops, keeping every acknowledged write", func() {
			all := admin(first.cfg.DataDir, procs[0].cfg.APIAddr, procs[1].cfg.APIAddr, procs[2].cfg.APIAddr)
			for i := range 5 {
				_, err := all.CreateService(ctx, service(fmt.Sprintf("before%d", i)))
				Expect(err).NotTo(HaveOccurred())
			}
			w := procs[3].node.Identity.NodeID
			Eventually(statusOf(all, w), 10*time.Second, 50*time.Millisecond).Should(Equal(types.NodeReady))
			Expect(first.stop()).To(Succeed())
			// The client retries through the election.
			_, err := all.CreateService(ctx, service("after"))
			Expect(err).NotTo(HaveOccurred())
			list, err := all.ListServices(ctx, false)
			Expect(err).NotTo(HaveOccurred())
			Expect(list).To(HaveLen(6))
			info, err := all.Cluster(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Leader).NotTo(Equal(first.node.Identity.NodeID))
			// The worker joined through the stopped manager: it reaches
			// the others, which it learned from its heartbeats, and is
			// never marked down (TTL 500 ms here).
			Consistently(statusOf(all, w), 2*time.Second, 100*time.Millisecond).Should(Equal(types.NodeReady))

			// The old leader comes back as a follower and catches up.
			back := mustLaunch(first.cfg, daemon.Start)
			only := admin(first.cfg.DataDir, back.cfg.APIAddr)
			Eventually(func() (int, error) {
				l, err := only.ListServices(ctx, true)
				return len(l), err
			}, 10*time.Second, 50*time.Millisecond).Should(Equal(6))
		})

		It("removes a worker that is down, and the worker is told when it comes back", func() {
			w := procs[3]
			id := w.node.Identity.NodeID
			Eventually(statusOf(c, id), 10*time.Second, 50*time.Millisecond).Should(Equal(types.NodeReady))
			Expect(c.RemoveNode(ctx, id, false)).To(MatchError(ContainSubstring("is up")))
			Expect(w.stop()).To(Succeed())
			Eventually(statusOf(c, id), 10*time.Second, 50*time.Millisecond).Should(Equal(types.NodeDown))
			Expect(c.RemoveNode(ctx, id, false)).To(Succeed())
			_, err := c.GetNode(ctx, id)
			Expect(err).To(MatchError(ContainSubstring("not found")))

			back := mustLaunch(w.cfg, daemon.Start)
			var runErr error
			Eventually(back.done, 10*time.Second).Should(Receive(&runErr))
			back.cancel() // it stopped by itself; nothing is left to stop
			back.cancel = nil
			Expect(runErr).To(MatchError(api.ErrRemoved))
			Expect(runErr.Error()).To(ContainSubstring("join again"))
		})

		It("answers writes with a clear error, not a hang, once the quorum is lost; stale reads still work", func() {
			survivor := procs[2]
			if survivor.node.Leader() {
				survivor = procs[1]
			}
			for _, p := range procs[:3] {
				if p != survivor {
					Expect(p.stop()).To(Succeed())
				}
			}
			sc := admin(first.cfg.DataDir, survivor.cfg.APIAddr)
			done := make(chan error, 1)
			go func() {
				_, err := sc.CreateService(ctx, service("no-quorum"))
				done <- err
			}()
			var err error
			Eventually(done, 30*time.Second).Should(Receive(&err))
			Expect(err).To(Or(MatchError(api.ErrNoLeader), MatchError(api.ErrNotLeader), MatchError(api.ErrUnavailable)))
			Expect(err.Error()).To(Or(ContainSubstring("too few managers"), ContainSubstring("no manager reachable")))
			list, err := sc.ListServices(ctx, true)
			Expect(err).NotTo(HaveOccurred())
			Expect(list).NotTo(ContainElement(HaveField("Name", "no-quorum")))
		})

		It("comes back from a lost quorum with --force-new-cluster on a survivor", func() {
			for i := range 3 {
				_, err := c.CreateService(ctx, service(fmt.Sprintf("svc%d", i)))
				Expect(err).NotTo(HaveOccurred())
			}
			survivor := procs[2]
			Eventually(func() (int, error) {
				l, err := admin(first.cfg.DataDir, survivor.cfg.APIAddr).ListServices(ctx, true)
				return len(l), err
			}, 10*time.Second, 50*time.Millisecond).Should(Equal(3))
			for _, p := range procs[:3] {
				Expect(p.stop()).To(Succeed())
			}
			back := mustLaunch(survivor.cfg, daemon.ForceNewCluster)
			sc := admin(first.cfg.DataDir, back.cfg.APIAddr)
			// The survivor elects itself after its election timeout.
			Eventually(func() (string, error) {
				info, err := sc.Cluster(ctx)
				if err != nil {
					return "", err
				}
				Expect(info.Managers).To(HaveLen(1))
				return info.Leader, nil
			}, 10*time.Second, 50*time.Millisecond).Should(Equal(survivor.node.Identity.NodeID))
			_, err := sc.CreateService(ctx, service("after"))
			Expect(err).NotTo(HaveOccurred())
			list, err := sc.ListServices(ctx, false)
			Expect(err).NotTo(HaveOccurred())
			Expect(list).To(HaveLen(4))
		})

		It("promotes a worker to manager and demotes managers, the leader included", func() {
			w := procs[3]
			id := w.node.Identity.NodeID
			Expect(c.PromoteNode(ctx, id)).To(Succeed())
			Eventually(w.node.Manager, 10*time.Second, 50*time.Millisecond).Should(BeTrue())
			all := admin(first.cfg.DataDir, procs[0].cfg.APIAddr, procs[1].cfg.APIAddr, procs[2].cfg.APIAddr, w.cfg.APIAddr)
			voters := func() []string {
				info, err := all.Cluster(ctx)
				Expect(err).NotTo(HaveOccurred())
				var ids []string
				for _, m := range info.Managers {
					if m.Voter && m.Reachable {
						ids = append(ids, m.ID)
					}
				}
				return ids
			}
			Eventually(voters, 10*time.Second, 50*time.Millisecond).Should(ContainElement(id))
			Expect(voters()).To(HaveLen(4))
			// The promoted node takes writes like any manager.
			_, err := admin(first.cfg.DataDir, w.cfg.APIAddr).CreateService(ctx, service("via-promoted"))
			Expect(err).NotTo(HaveOccurred())

			follower := procs[1]
			if follower.node.Leader() {
				follower = procs[2]
			}
			Expect(all.DemoteNode(ctx, follower.node.Identity.NodeID)).To(Succeed())
			Eventually(follower.node.Manager, 10*time.Second, 50*time.Millisecond).Should(BeFalse())
			Expect(voters()).NotTo(ContainElement(follower.node.Identity.NodeID))
			Eventually(func() bool {
				_, err := os.Stat(filepath.Join(follower.cfg.DataDir, "raft.db"))
				return os.IsNotExist(err)
			}, 10*time.Second, 50*time.Millisecond).Should(BeTrue(), "a demoted manager keeps no raft log")

			var leader *proc
			for _, p := range procs {
				if p.node.Leader() {
					leader = p
				}
			}
			Expect(leader).NotTo(BeNil())
			Expect(all.DemoteNode(ctx, leader.node.Identity.NodeID)).To(Succeed())
			Eventually(leader.node.Manager, 10*time.Second, 50*time.Millisecond).Should(BeFalse())
			Eventually(func() int { return len(voters()) }, 10*time.Second, 50*time.Millisecond).Should(Equal(2))
			n, err := all.GetNode(ctx, leader.node.Identity.NodeID)
			Expect(err).NotTo(HaveOccurred())
			Expect(n.Role).To(Equal(types.RoleWorker))
			Eventually(statusOf(all, leader.node.Identity.NodeID), 10*time.Second, 50*time.Millisecond).Should(Equal(types.NodeReady))
		})

		It("rotates a join token: the old one stops working", func() {
			old := token(c, "worker")
			fresh, err := c.RotateJoinToken(ctx, "worker")
			Expect(err).NotTo(HaveOccurred())
			Expect(fresh).NotTo(Equal(old))
			_, err = launch(nodeConfig(filepath.Join(root, "w2")), joiner(first.cfg.APIAddr, old, false))
			Expect(err).To(MatchError(api.ErrUnauthorized))
			Expect(err.Error()).To(ContainSubstring("join-token"))
			mustLaunch(nodeConfig(filepath.Join(root, "w3")), joiner(procs[1].cfg.APIAddr, fresh, false))
		})
	})

	It("backs up while running and restores into a new single-manager cluster with the same state", func() {
		c := admin(first.cfg.DataDir, first.cfg.APIAddr)
		for i := range 3 {
			_, err := c.CreateService(ctx, service(fmt.Sprintf("svc%d", i)))
			Expect(err).NotTo(HaveOccurred())
		}
		var buf bytes.Buffer
		info, err := daemon.WriteBackup(ctx, c, first.cfg.DataDir, &buf)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.ClusterID).To(Equal(first.node.Identity.ClusterID))
		Expect(info.AppliedIndex).To(BeNumerically(">", 3))
		Expect(first.stop()).To(Succeed())

		dir := filepath.Join(root, "restored")
		_, err = daemon.Restore(bytes.NewReader(buf.Bytes()), dir)
		Expect(err).NotTo(HaveOccurred())
		_, err = daemon.Restore(bytes.NewReader(buf.Bytes()), dir)
		Expect(err).To(MatchError(daemon.ErrInitialized), "a second restore into the same directory")

		back := mustLaunch(nodeConfig(dir), daemon.ForceNewCluster)
		rc := admin(dir, back.cfg.APIAddr)
		list, err := rc.ListServices(ctx, false)
		Expect(err).NotTo(HaveOccurred())
		Expect(list).To(HaveLen(3))
		ci, err := rc.Cluster(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(ci.ID).To(Equal(first.node.Identity.ClusterID))
		Expect(ci.Managers).To(HaveLen(1))
		Expect(ci.Leader).To(Equal(back.node.Identity.NodeID))
		// The restored cluster takes writes and restarts as a plain node.
		_, err = rc.CreateService(ctx, service("after-restore"))
		Expect(err).NotTo(HaveOccurred())
		Expect(back.stop()).To(Succeed())
		again := mustLaunch(back.cfg, daemon.Start)
		list, err = admin(dir, again.cfg.APIAddr).ListServices(ctx, false)
		Expect(err).NotTo(HaveOccurred())
		Expect(list).To(HaveLen(4))
	})

	It("refuses a damaged backup, leaving the directory empty of a node", func() {
		dir := filepath.Join(root, "restored")
		_, err := daemon.Restore(bytes.NewReader([]byte("not a backup")), dir)
		Expect(err).To(MatchError(daemon.ErrBadBackup))
		_, err = launch(nodeConfig(dir), daemon.ForceNewCluster)
		Expect(err).To(MatchError(daemon.ErrNotInitialized))
	})

	DescribeTable("refuses a join, writing nothing",
		func(tok func(c *api.Client) string, addr func() string, asManager bool, want error, says string) {
			c := admin(first.cfg.DataDir, first.cfg.APIAddr)
			dir := filepath.Join(root, "joiner")
			_, err := launch(nodeConfig(dir), joiner(addr(), tok(c), asManager))
			Expect(err).To(MatchError(want))
			Expect(err.Error()).To(ContainSubstring(says))
			_, statErr := os.Stat(filepath.Join(dir, daemon.IdentityFile))
			Expect(errors.Is(statErr, os.ErrNotExist)).To(BeTrue())
		},
		Entry("a malformed token", func(*api.Client) string { return "hello" }, func() string { return first.cfg.APIAddr }, false,
			daemon.ErrBadToken, "WRN-1-"),
		Entry("a token of another CA", func(c *api.Client) string {
			t := token(c, "worker")
			return t[:6] + "00000000" + t[14:]
		}, func() string { return first.cfg.APIAddr }, false, pki.ErrPeerRefused, "does not present the CA"),
		Entry("the worker token to join as a manager", func(c *api.Client) string { return token(c, "worker") },
			func() string { return first.cfg.APIAddr }, true, api.ErrForbidden, "worker join token"),
		Entry("an unreachable manager", func(c *api.Client) string { return token(c, "worker") },
			func() string { return freeAddr() }, false, api.ErrUnavailable, "check"),
	)
})
