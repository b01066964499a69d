package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/daemon"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

var _ = Describe("Volumes on their node", Label("integ"), func() {
	var (
		ctx    context.Context
		c      *api.Client
		worker *proc
		dir    func(name string) string
	)
	exists := func(path string) func() bool {
		return func() bool { _, err := os.Stat(path); return err == nil }
	}
	volume := func(name string) func() *api.VolumeInfo {
		return func() *api.VolumeInfo {
			v, err := c.GetVolume(ctx, name)
			Expect(err).NotTo(HaveOccurred())
			return v
		}
	}

	BeforeEach(func() {
		ctx = context.Background()
		root := GinkgoT().TempDir()
		first := mustLaunch(nodeConfig(filepath.Join(root, "m1")), daemon.Init)
		c = admin(first.cfg.DataDir, first.cfg.APIAddr)
		worker = mustLaunch(nodeConfig(filepath.Join(root, "w1")), joiner(first.cfg.APIAddr, token(c, "worker"), false))
		dir = func(name string) string { return filepath.Join(worker.cfg.DataDir, daemon.VolumesDir, name) }
		Eventually(statusOf(c, worker.node.Identity.NodeID), 10*time.Second, 50*time.Millisecond).Should(Equal(types.NodeReady))
	})

	It("makes a volume's directory on the node it is created on, reports its size, and removes it with the volume", func() {
		info, err := c.CreateVolume(ctx, &api.VolumeSpec{Name: "db-data", Node: "w1"})
		Expect(err).NotTo(HaveOccurred())
		Expect(info.NodeID).To(Equal(worker.node.Identity.NodeID))
		Eventually(exists(dir("db-data")), 10*time.Second, 50*time.Millisecond).Should(BeTrue())
		// Made first, then recorded: a crash between the two leaks the
		// directory rather than removing one not known to be the node's.
		Eventually(exists(filepath.Join(worker.cfg.DataDir, daemon.VolumeLedgerFile)), 10*time.Second, 50*time.Millisecond).Should(BeTrue())

		Eventually(volume("db-data"), 10*time.Second, 100*time.Millisecond).Should(HaveField("Measured()", BeTrue()))
		Expect(volume("db-data")().Size).To(BeZero())
		Expect(os.WriteFile(filepath.Join(dir("db-data"), "pgdata"), make([]byte, 1234), 0o600)).To(Succeed())
		Expect(os.MkdirAll(filepath.Join(dir("db-data"), "base", "1"), 0o755)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir("db-data"), "base", "1", "rel"), make([]byte, 766), 0o600)).To(Succeed())
		Eventually(volume("db-data"), 10*time.Second, 100*time.Millisecond).Should(HaveField("Size", int64(2000)))

		// Idle: measured again and again, recorded once.
		at := volume("db-data")().SizeAt
		Consistently(func() time.Time { return volume("db-data")().SizeAt }, 2*time.Second, 200*time.Millisecond).Should(Equal(at))

		_, err = c.DeleteVolume(ctx, "db-data", false)
		Expect(err).NotTo(HaveOccurred())
		Eventually(exists(dir("db-data")), 10*time.Second, 50*time.Millisecond).Should(BeFalse())
	})

	It("never removes a directory it did not make", func() {
		Expect(os.MkdirAll(dir("mine"), 0o755)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir("mine"), "keep"), []byte("user data"), 0o600)).To(Succeed())
		_, err := c.CreateVolume(ctx, &api.VolumeSpec{Name: "mine", Node: worker.node.Identity.NodeID})
		Expect(err).NotTo(HaveOccurred())
		_, err = c.CreateVolume(ctx, &api.VolumeSpec{Name: "made", Node: "w1"})
		Expect(err).NotTo(HaveOccurred())
		Eventually(exists(dir("made")), 10*time.Second, 50*time.Millisecond).Should(BeTrue())
		Eventually(volume("mine"), 10*time.Second, 100*time.Millisecond).Should(HaveField("Size", int64(9)))

		for _, name := range []string{"mine", "made"} {
			_, err = c.DeleteVolume(ctx, name, false)
			Expect(err).NotTo(HaveOccurred())
		}
		Eventually(exists(dir("made")), 10*time.Second, 50*time.Millisecond).Should(BeFalse())
		Expect(filepath.Join(dir("mine"), "keep")).To(BeARegularFile())
	})

	It("stops the services that use it with --force, and removes the data once their containers are gone", func() {
		_, err := c.CreateVolume(ctx, &api.VolumeSpec{Name: "db-data", Node: "w1"})
		Expect(err).NotTo(HaveOccurred())
		svc := service("postgres")
		svc.Volumes = []*types.VolumeMount{{Source: "db-data", Target: "/var/lib/postgresql/data"}}
		_, err = c.CreateService(ctx, svc)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() []string {
			tasks, err := c.ListContainers(ctx, "", "", false)
			Expect(err).NotTo(HaveOccurred())
			var on []string
			for _, t := range tasks {
				if t.ActualState == types.ContainerRunning {
					on = append(on, t.NodeID)
				}
			}
			return on
		}, 10*time.Second, 50*time.Millisecond).Should(Equal([]string{worker.node.Identity.NodeID}))
		Expect(volume("db-data")().UsedByTasks).To(HaveLen(1))

		_, err = c.DeleteVolume(ctx, "db-data", false)
		Expect(err).To(MatchError(fsm.ErrInUse))
		Expect(err).To(MatchError(ContainSubstring("postgres")))

		gone, err := c.DeleteVolume(ctx, "db-data", true)
		Expect(err).NotTo(HaveOccurred())
		Expect(gone.Stopped).To(Equal([]string{"postgres"}))
		Expect(c.GetService(ctx, "postgres")).To(HaveField("Replicas", 0))
		Eventually(exists(dir("db-data")), 10*time.Second, 50*time.Millisecond).Should(BeFalse())
	})

	It("makes, and owns, the directory of a volume its first task creates", func() {
		svc := service("cache")
		svc.Volumes = []*types.VolumeMount{{Source: "cache", Target: "/cache"}}
		svc.Constraints = []string{"node.hostname==w1"}
		_, err := c.CreateService(ctx, svc)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() string {
			v, err := c.GetVolume(ctx, "cache")
			if err != nil {
				return ""
			}
			return v.NodeID
		}, 10*time.Second, 50*time.Millisecond).Should(Equal(worker.node.Identity.NodeID))
		Eventually(exists(dir("cache")), 10*time.Second, 50*time.Millisecond).Should(BeTrue())
		Eventually(func() (string, error) {
			data, err := os.ReadFile(filepath.Join(worker.cfg.DataDir, daemon.VolumeLedgerFile))
			return string(data), err
		}, 10*time.Second, 50*time.Millisecond).Should(ContainSubstring(`"vol-cache"`))

		_, err = c.DeleteVolume(ctx, "cache", true)
		Expect(err).NotTo(HaveOccurred())
		Eventually(exists(dir("cache")), 10*time.Second, 50*time.Millisecond).Should(BeFalse())
	})
})
