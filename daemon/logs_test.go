package daemon_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/clock"
	wctd "github.com/warren-orchestrator/warren/backends/containerd"
	"github.com/warren-orchestrator/warren/backends/containerd/ctdtest"
	"github.com/warren-orchestrator/warren/backends/containerd/testimage"
	"github.com/warren-orchestrator/warren/backends/pki"
	"github.com/warren-orchestrator/warren/daemon"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// talkScript prints three known lines, then a tick a second until SIGTERM.
const talkScript = `echo first; echo second; echo third; i=0; trap 'exit 0' TERM; while :; do sleep 1 & wait $!; i=$((i+1)); echo "tick $i"; done`

// startContainerd starts a containerd of the spec container's own, with
// the test image loaded.
func startContainerd() *ctdtest.Daemon {
	GinkgoHelper()
	dir, err := os.MkdirTemp("", "ctd") // short: the socket's path must fit
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	ctd, err := ctdtest.Start(dir)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(ctd.Stop()).To(Succeed()) })

	images, err := wctd.OpenImages(ctd.Address)
	Expect(err).NotTo(HaveOccurred())
	defer images.Close()
	pr, pw := io.Pipe()
	go func() { _ = pw.CloseWithError(testimage.Write(pw, testimage.Options{})) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = images.Load(ctx, pr)
	Expect(err).NotTo(HaveOccurred())
	return ctd
}

// logsOf collects a service's log entries (not following).
func logsOf(c *api.Client, key string, tail int) ([]api.LogEntry, error) {
	var got []api.LogEntry
	err := c.ServiceLogs(context.Background(), key, api.LogOptions{Tail: tail}, func(e api.LogEntry) error {
		got = append(got, e)
		return nil
	})
	return got, err
}

// linesByTask groups entries' lines by "TASK@NODE", failing on an error
// entry.
func linesByTask(g Gomega, entries []api.LogEntry) map[string][]string {
	out := map[string][]string{}
	for _, e := range entries {
		g.Expect(e.Error).To(BeEmpty(), "%s@%s", e.Task, e.Node)
		out[e.Task+"@"+e.Node] = append(out[e.Task+"@"+e.Node], e.Line)
	}
	return out
}

// nodeClient calls a node's endpoints with the certificate of the node
// whose data directory is dir.
func nodeClient(dir, addr string) *api.Client {
	GinkgoHelper()
	pool, err := pki.LoadCAPool(filepath.Join(dir, daemon.PKIDir))
	Expect(err).NotTo(HaveOccurred())
	cert, err := daemon.LoadNodeCert(dir)
	Expect(err).NotTo(HaveOccurred())
	c, err := api.NewClient(api.ClientConfig{Managers: []string{addr}, TLS: pki.ClientConfig(pool, cert), Wait: clock.Wall{}.Wait})
	Expect(err).NotTo(HaveOccurred())
	return c
}

var _ = Describe("Service logs", Ordered, Label("integ"), func() {
	var ctd *ctdtest.Daemon
	BeforeAll(func() {
		ctd = startContainerd()
		// Registered after the containerd's stop: runs before it, once the
		// specs' containers are gone.
		DeferCleanup(func() { Expect(ctdtest.NetworkDaemon.Remove()).To(Succeed()) })
	})

	var (
		ctx      context.Context
		m1, w1   *proc
		c        *api.Client
		tasks    map[string]*types.Container // by hostname of their node
		wantHost = []string{"m1", "w1"}
	)
	BeforeEach(func() {
		ctx = context.Background()
		// Runs once the nodes have stopped: their containers outlive them.
		DeferCleanup(ctd.Purge)
		root := GinkgoT().TempDir()
		withContainerd := func(cfg daemon.Config) daemon.Config {
			cfg.Runtime, cfg.Containerd = daemon.RuntimeContainerd, ctd.Address
			cfg.Bridge, cfg.Subnet = ctdtest.NetworkDaemon.Bridge, ctdtest.NetworkDaemon.Subnet
			return cfg
		}
		m1 = mustLaunch(withContainerd(nodeConfig(filepath.Join(root, "m1"))), daemon.Init)
		c = admin(m1.cfg.DataDir, m1.cfg.APIAddr)
		w1 = mustLaunch(withContainerd(nodeConfig(filepath.Join(root, "w1"))), joiner(m1.cfg.APIAddr, token(c, "worker"), false))
		for _, p := range []*proc{m1, w1} {
			Eventually(statusOf(c, p.node.Identity.NodeID), 10*time.Second, 50*time.Millisecond).Should(Equal(types.NodeReady))
		}
		svc := service("talk")
		svc.Image, svc.Replicas = testimage.DefaultName, 2
		svc.Command = []string{"/bin/sh", "-c", talkScript}
		_, err := c.CreateService(ctx, svc)
		Expect(err).NotTo(HaveOccurred())
		hosts := map[string]string{m1.node.Identity.NodeID: "m1", w1.node.Identity.NodeID: "w1"}
		Eventually(func() []string {
			list, err := c.ListContainers(ctx, "", "", false)
			Expect(err).NotTo(HaveOccurred())
			tasks = map[string]*types.Container{}
			var running []string
			for _, t := range list {
				if t.ActualState == types.ContainerRunning {
					tasks[hosts[t.NodeID]] = t
					running = append(running, hosts[t.NodeID])
				}
			}
			return running
		}, 30*time.Second, 100*time.Millisecond).Should(ConsistOf(wantHost), "the scheduler spreads the service over both nodes")
	})

	It("relays every task's output, from the manager's own node and from the worker", func() {
		var entries []api.LogEntry
		Eventually(func(g Gomega) {
			var err error
			entries, err = logsOf(c, "talk", api.AllLines)
			g.Expect(err).NotTo(HaveOccurred())
			byTask := linesByTask(g, entries)
			g.Expect(byTask).To(HaveLen(2))
			for _, host := range wantHost {
				lines := byTask[tasks[host].ID+"@"+host]
				g.Expect(len(lines)).To(BeNumerically(">=", 3), host)
				g.Expect(lines[:3]).To(Equal([]string{"first", "second", "third"}))
				g.Expect(lines[3:]).To(HaveEach(MatchRegexp(`^tick \d+$`)))
			}
		}, 10*time.Second, 200*time.Millisecond).Should(Succeed())
		for _, e := range entries {
			Expect(e.NodeID).To(Equal(map[string]string{"m1": m1.node.Identity.NodeID, "w1": w1.node.Identity.NodeID}[e.Node]))
		}
	})

	It("starts with each task's last lines with a tail", func() {
		Eventually(func(g Gomega) {
			entries, err := logsOf(c, "talk", 1)
			g.Expect(err).NotTo(HaveOccurred())
			byTask := linesByTask(g, entries)
			for _, host := range wantHost {
				g.Expect(byTask).To(HaveKeyWithValue(tasks[host].ID+"@"+host, ConsistOf(MatchRegexp(`^tick \d+$`))))
			}
			g.Expect(entries).To(HaveLen(2))
		}, 10*time.Second, 200*time.Millisecond).Should(Succeed())
	})

	It("follows: sends what the tasks print after the request began, until the client goes", func() {
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		got := make(chan api.LogEntry, 100)
		done := make(chan error, 1)
		go func() {
			done <- c.ServiceLogs(fctx, "talk", api.LogOptions{Follow: true, Tail: 0}, func(e api.LogEntry) error {
				got <- e
				return nil
			})
		}()
		seen := map[string]bool{}
		Eventually(func() map[string]bool {
			for {
				select {
				case e := <-got:
					Expect(e.Error).To(BeEmpty())
					Expect(e.Line).To(MatchRegexp(`^tick \d+$`), "tail 0: nothing printed before the request")
					seen[e.Node] = true
				default:
					return seen
				}
			}
		}, 10*time.Second, 100*time.Millisecond).Should(HaveLen(2))
		Consistently(done, 500*time.Millisecond).ShouldNot(Receive())
		cancel()
		Eventually(done, 5*time.Second).Should(Receive(MatchError(context.Canceled)))
	})

	It("says which service is unknown", func() {
		_, err := logsOf(c, "nope", api.AllLines)
		Expect(err).To(MatchError(state.ErrNotFound))
		Expect(err.Error()).To(ContainSubstring(`"nope"`))
	})

	It("serves a worker's task logs to a manager's certificate only, and nothing else on the worker's address", func() {
		addr, task := w1.cfg.APIAddr, tasks["w1"].ID
		read := func(c *api.Client, task string) (string, error) {
			rc, err := c.TaskLog(ctx, addr, task, api.LogOptions{Tail: api.AllLines})
			if err != nil {
				return "", err
			}
			defer rc.Close()
			data, err := io.ReadAll(rc)
			return string(data), err
		}
		Expect(read(nodeClient(m1.cfg.DataDir, addr), task)).To(HavePrefix("first\nsecond\nthird\n"))
		for _, c := range []*api.Client{admin(m1.cfg.DataDir, addr), nodeClient(w1.cfg.DataDir, addr)} {
			_, err := read(c, task)
			Expect(err).To(MatchError(api.ErrForbidden))
		}
		_, err := read(nodeClient(m1.cfg.DataDir, addr), "talk.9.nope")
		Expect(err).To(MatchError(state.ErrNotFound))
		Expect(err.Error()).To(ContainSubstring("talk.9.nope"))

		_, err = admin(m1.cfg.DataDir, addr).ListServices(ctx, true)
		Expect(err).To(MatchError(api.ErrNotManager))
		Expect(err.Error()).To(ContainSubstring("worker, not a manager"))
	})

	It("still relays after the worker is promoted, and after it is demoted again", func() {
		whole := func(via *api.Client) func(Gomega) {
			return func(g Gomega) {
				entries, err := logsOf(via, "talk", api.AllLines)
				g.Expect(err).NotTo(HaveOccurred())
				byTask := linesByTask(g, entries)
				for _, host := range wantHost {
					g.Expect(byTask).To(HaveKeyWithValue(tasks[host].ID+"@"+host, ContainElements("first", "second", "third")))
				}
			}
		}
		id := w1.node.Identity.NodeID
		Expect(c.PromoteNode(ctx, id)).To(Succeed())
		Eventually(w1.node.Manager, 10*time.Second, 50*time.Millisecond).Should(BeTrue())
		// Through the promoted node (its own task read locally, m1's over
		// HTTPS), and through m1 (w1's task from w1's manager API).
		Eventually(whole(admin(m1.cfg.DataDir, w1.cfg.APIAddr)), 10*time.Second, 200*time.Millisecond).Should(Succeed())
		Eventually(whole(c), 10*time.Second, 200*time.Millisecond).Should(Succeed())

		Eventually(func() error { return c.DemoteNode(ctx, id) }, 10*time.Second, 200*time.Millisecond).Should(Succeed())
		Eventually(w1.node.Manager, 10*time.Second, 50*time.Millisecond).Should(BeFalse())
		Eventually(whole(c), 10*time.Second, 200*time.Millisecond).Should(Succeed())
	})
})

var _ = Describe("Service logs on the simulated runtime", Label("integ"), func() {
	It("says that the node keeps no logs", func() {
		p := mustLaunch(nodeConfig(filepath.Join(GinkgoT().TempDir(), "sim")), daemon.Init)
		c := admin(p.cfg.DataDir, p.cfg.APIAddr)
		Eventually(statusOf(c, p.node.Identity.NodeID), 10*time.Second, 50*time.Millisecond).Should(Equal(types.NodeReady))
		_, err := c.CreateService(context.Background(), service("quiet"))
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			entries, err := logsOf(c, "quiet", api.AllLines)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(entries).To(HaveLen(1))
			g.Expect(entries[0].Task).To(HavePrefix("quiet.1."))
			g.Expect(entries[0].Error).To(ContainSubstring("simulated runtime"))
			g.Expect(entries[0].Error).To(ContainSubstring("keeps no logs"))
		}, 10*time.Second, 100*time.Millisecond).Should(Succeed())
	})
})
