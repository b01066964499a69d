package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/clock"
	wctd "github.com/warren-orchestrator/warren/backends/containerd"
	"github.com/warren-orchestrator/warren/backends/containerd/ctdtest"
	"github.com/warren-orchestrator/warren/backends/containerd/testimage"
	"github.com/warren-orchestrator/warren/backends/pki"
	"github.com/warren-orchestrator/warren/cmd/warren/cli"
	"github.com/warren-orchestrator/warren/daemon"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// syncBuffer is a buffer a running command writes while the spec reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serviceLogs runs `warren [global] service logs args` to its end:
// through the command tree once service.go registers the command, else
// through the command alone.
func serviceLogs(global []string, args ...string) (code int, stdout, stderr string) {
	root := cli.NewRootCommand(func(string) string { return "" })
	if c, _, err := root.Find([]string{"service", "logs"}); err == nil && c.Name() == "logs" {
		return run(nil, append(append(global, "service", "logs"), args...)...)
	}
	var out, errOut syncBuffer
	code = <-startServiceLogs(context.Background(), global, &out, &errOut, args...)
	return code, out.String(), errOut.String()
}

// startServiceLogs runs the command alone until it ends or ctx does, and
// sends its exit code.
func startServiceLogs(ctx context.Context, global []string, out, errOut io.Writer, args ...string) <-chan int {
	opts := &cli.Options{Output: "table"}
	for i := 0; i+1 < len(global); i += 2 {
		switch global[i] {
		case "--data-dir":
			opts.DataDir = global[i+1]
		case "--manager":
			opts.Manager = global[i+1]
		}
	}
	cmd := cli.NewServiceLogsCommand(opts)
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	code := make(chan int, 1)
	go func() {
		defer GinkgoRecover()
		if err := cmd.ExecuteContext(ctx); err != nil {
			fmt.Fprintln(errOut, "Error:", err)
			code <- 1
			return
		}
		code <- 0
	}()
	return code
}

// startContainerdCluster runs a one-node cluster whose worker runs real
// containers on a containerd of its own, with the test image loaded, and
// returns the global flags that reach it.
func startContainerdCluster() (dir string, global []string) {
	GinkgoHelper()
	tmp, err := os.MkdirTemp("", "ctd") // short: the socket's path must fit
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, tmp)
	ctd, err := ctdtest.Start(tmp)
	Expect(err).NotTo(HaveOccurred())
	// Cleanups run last first: the node goes, then containerd's
	// containers, then the network.
	DeferCleanup(func() { Expect(ctdtest.NetworkCLI.Remove()).To(Succeed()) })
	DeferCleanup(func() { Expect(ctd.Stop()).To(Succeed()) })
	images, err := wctd.OpenImages(ctd.Address)
	Expect(err).NotTo(HaveOccurred())
	pr, pw := io.Pipe()
	go func() { _ = pw.CloseWithError(testimage.Write(pw, testimage.Options{})) }()
	lctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = images.Load(lctx, pr)
	Expect(err).NotTo(HaveOccurred())
	Expect(images.Close()).To(Succeed())

	return startClusterWith(func(cfg *daemon.Config) {
		cfg.Hostname = "node1"
		cfg.Runtime, cfg.Containerd = daemon.RuntimeContainerd, ctd.Address
		cfg.Bridge, cfg.Subnet = ctdtest.NetworkCLI.Bridge, ctdtest.NetworkCLI.Subnet
	})
}

// adminOf is the API client of the CLI's administrator.
func adminOf(dir, addr string) *api.Client {
	GinkgoHelper()
	pool, err := pki.LoadCAPool(filepath.Join(dir, daemon.PKIDir))
	Expect(err).NotTo(HaveOccurred())
	cert, err := pki.LoadCert(filepath.Join(dir, daemon.PKIDir), daemon.AdminCertName)
	Expect(err).NotTo(HaveOccurred())
	c, err := api.NewClient(api.ClientConfig{Managers: []string{addr}, TLS: pki.ClientConfig(pool, cert), Wait: clock.Wall{}.Wait})
	Expect(err).NotTo(HaveOccurred())
	return c
}

var _ = Describe("service logs", Ordered, Label("integ"), func() {
	var global []string
	BeforeAll(func() {
		var dir string
		dir, global = startContainerdCluster()
		c := adminOf(dir, global[3])
		ctx := context.Background()
		_, err := c.CreateService(ctx, &types.Service{
			Name: "talk", Image: testimage.DefaultName, Replicas: 2, Mode: types.ModeReplicated, DeployStrategy: types.DeployRolling,
			Command: []string{"/bin/sh", "-c", `echo first; echo second; echo third; trap 'exit 0' TERM; i=0; while :; do sleep 1 & wait $!; i=$((i+1)); echo "tick $i"; done`},
		})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() int {
			tasks, err := c.ListContainers(ctx, "", "", false)
			Expect(err).NotTo(HaveOccurred())
			running := 0
			for _, t := range tasks {
				if t.ActualState == types.ContainerRunning {
					running++
				}
			}
			return running
		}, 30*time.Second, 100*time.Millisecond).Should(Equal(2))
	})

	It("prints every task's lines as TASK@NODE | LINE", func() {
		Eventually(func(g Gomega) {
			code, out, errOut := serviceLogs(global, "talk")
			g.Expect(code).To(Equal(0), errOut)
			for _, line := range []string{"first", "second", "third"} {
				g.Expect(out).To(MatchRegexp(`(?m)^talk\.1\.[0-9a-f]+@node1 \| %s$`, line))
				g.Expect(out).To(MatchRegexp(`(?m)^talk\.2\.[0-9a-f]+@node1 \| %s$`, line))
			}
		}, 10*time.Second, 200*time.Millisecond).Should(Succeed())
	})

	It("starts with each task's last lines with --tail", func() {
		code, out, errOut := serviceLogs(global, "talk", "--tail", "1")
		Expect(code).To(Equal(0), errOut)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		Expect(lines).To(HaveLen(2))
		Expect(lines).To(HaveEach(MatchRegexp(`^talk\.[12]\.[0-9a-f]+@node1 \| (third|tick \d+)$`)))
		Expect(lines).To(ConsistOf(HavePrefix("talk.1."), HavePrefix("talk.2.")), "a line of each task, in either order")
	})

	It("follows until interrupted, and exits 0", func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errOut syncBuffer
		code := startServiceLogs(ctx, global, &out, &errOut, "talk", "-f", "--tail", "0")
		Eventually(out.String, 10*time.Second, 100*time.Millisecond).Should(MatchRegexp(`(?m)^talk\.[12]\.[0-9a-f]+@node1 \| tick \d+$`))
		Expect(out.String()).NotTo(ContainSubstring("| first"), "--tail 0 starts at the end")
		Consistently(code, 500*time.Millisecond).ShouldNot(Receive())
		cancel()
		Eventually(code, 5*time.Second).Should(Receive(Equal(0)), errOut.String())
	})

	It("fails on an unknown service, naming it", func() {
		code, _, errOut := serviceLogs(global, "nope")
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring(`no service with ID or name "nope"`))
	})

	It("refuses a --tail that is not a number of lines", func() {
		code, _, errOut := serviceLogs(global, "talk", "--tail", "-3")
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring("give a number of lines"))
	})
})

var _ = Describe("service logs on the simulated runtime", Label("integ"), func() {
	It("says why there is no output, and fails", func() {
		dir, global := startCluster()
		c := adminOf(dir, global[3])
		_, err := c.CreateService(context.Background(), &types.Service{Name: "quiet", Image: "busybox", Replicas: 1,
			Mode: types.ModeReplicated, DeployStrategy: types.DeployRolling})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			code, out, errOut := serviceLogs(global, "quiet")
			g.Expect(code).To(Equal(1))
			g.Expect(out).To(BeEmpty())
			g.Expect(errOut).To(MatchRegexp(`quiet\.1\.[0-9a-f]+@\S+ \| cannot read its output: .*simulated runtime`))
			g.Expect(errOut).To(ContainSubstring("could not be read"))
		}, 10*time.Second, 200*time.Millisecond).Should(Succeed())
	})
})
