package containerd_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/clock"
	wctd "github.com/warren-orchestrator/warren/backends/containerd"
	"github.com/warren-orchestrator/warren/backends/containerd/cninet"
	"github.com/warren-orchestrator/warren/backends/containerd/ctdtest"
	"github.com/warren-orchestrator/warren/backends/containerd/testimage"
)

func TestContainerd(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Containerd Suite")
}

// daemon is the suite's containerd, started once; the test image is loaded
// into it.
var daemon *ctdtest.Daemon

// network is the suite's container network: a bridge and subnet of its
// own (other suites run at the same time on the same node), shared by every
// runtime of the suite as by the nodes of one machine.
var network = cninet.Config{Bridge: "wctdtest0", Subnet: "10.232.0.0/24"}

var _ = BeforeSuite(func() {
	if !Label("integ").MatchesLabelFilter(GinkgoLabelFilter()) {
		return // no integration spec runs
	}
	dir, err := os.MkdirTemp("", "ctd")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	daemon, err = ctdtest.Start(dir)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(daemon.Stop()).To(Succeed()) })
	network.StateDir, network.NetnsDir = dir+"/cni", dir+"/netns"
	DeferCleanup(func() { _ = exec.Command("ip", "link", "delete", network.Bridge).Run() })

	rt := newRuntime(wctd.Config{})
	pr, pw := io.Pipe()
	go func() { _ = pw.CloseWithError(testimage.Write(pw, testimage.Options{})) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names, err := rt.Images().Load(ctx, pr)
	Expect(err).NotTo(HaveOccurred())
	Expect(names).To(Equal([]string{testimage.DefaultName}))
})

// newRuntime returns a runtime on the suite's containerd with its own
// directories (unless cfg names them), closed at the end of the spec.
func newRuntime(cfg wctd.Config) *wctd.Runtime {
	GinkgoHelper()
	cfg.Address = daemon.Address
	cfg.Network = network
	if cfg.RunDir == "" {
		cfg.RunDir = GinkgoT().TempDir()
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "node-1"
	}
	cfg.Clock = clock.Wall{}
	dir := GinkgoT().TempDir()
	if cfg.VolumesDir == "" {
		cfg.VolumesDir = dir + "/volumes"
	}
	if cfg.LogsDir == "" {
		cfg.LogsDir = dir + "/logs"
	}
	if cfg.SecretsDir == "" {
		cfg.SecretsDir = dir + "/secrets"
	}
	rt, err := wctd.New(cfg)
	Expect(err).NotTo(HaveOccurred())
	// Cleanups run last first: rt is closed (its starts in flight done)
	// before the purge.
	DeferCleanup(func() {
		Expect(daemon.Purge()).To(Succeed())
		// A runtime's sweep drops the secrets of the containers purged
		// (rt may be closed by now).
		sweeper, err := wctd.New(cfg)
		Expect(err).NotTo(HaveOccurred())
		defer sweeper.Close()
		_, err = sweeper.Containers()
		Expect(err).NotTo(HaveOccurred())
	})
	DeferCleanup(rt.Close)
	return rt
}
