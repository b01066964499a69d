package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/daemon"
	"github.com/warren-orchestrator/warren/orchestrator/api"
)

var _ = Describe("volume", Label("integ"), func() {
	var (
		dir    string
		global []string
	)
	warren := func(args ...string) (int, string, string) { return run(nil, append(global, args...)...) }
	// eventually polls a command's output.
	eventually := func(args ...string) AsyncAssertion {
		return Eventually(func() string { _, out, _ := warren(args...); return out }, 10*time.Second, 100*time.Millisecond)
	}

	BeforeEach(func() {
		dir, global = startClusterWith(func(cfg *daemon.Config) { cfg.Hostname = "worker-1" })
	})

	It("creates, lists and inspects volumes as the storage guide shows them", func() {
		code, out, errOut := warren("volume", "create", "db-data", "--driver", "local", "--label", "env=production", "--label", "app=postgres")
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(Equal("db-data\n"))
		code, _, errOut = warren("volume", "create", "app-data", "--node", "worker-1")
		Expect(code).To(Equal(0), errOut)

		code, out, _ = warren("volume", "list")
		Expect(code).To(Equal(0))
		Expect(out).To(MatchRegexp(`^NAME\s+DRIVER\s+SIZE\s+NODE\s+CREATED\n`))
		Expect(out).To(MatchRegexp(`(?m)^db-data\s+local\s+-\s+-\s+just now$`), "not placed, not measured")

		// The node makes the directory, then measures it.
		vol := filepath.Join(dir, daemon.VolumesDir, "app-data")
		Eventually(func() error { _, err := os.Stat(vol); return err }, 10*time.Second, 50*time.Millisecond).Should(Succeed())
		Expect(os.WriteFile(filepath.Join(vol, "data"), make([]byte, 1234), 0o600)).To(Succeed())
		eventually("volume", "ls").Should(MatchRegexp(`(?m)^app-data\s+local\s+1\.2KB\s+worker-1\s+just now$`))

		code, out, _ = warren("volume", "inspect", "app-data")
		Expect(code).To(Equal(0))
		Expect(out).To(MatchRegexp(`^Name: app-data
ID: \S{20}
Driver: local
Mount Point: ` + regexp.QuoteMeta(vol) + `
Node: worker-1
Size: 1\.2 KB
Used By: -
Created: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d
$`))

		code, out, _ = warren("volume", "inspect", "db-data", "-o", "json")
		Expect(code).To(Equal(0))
		var info api.VolumeInfo
		Expect(json.Unmarshal([]byte(out), &info)).To(Succeed(), out)
		Expect(info.Labels).To(Equal(map[string]string{"env": "production", "app": "postgres"}))
		Expect(info.Measured()).To(BeFalse())

		code, out, _ = warren("volume", "ls", "-o", "json")
		Expect(code).To(Equal(0))
		var list []api.VolumeInfo
		Expect(json.Unmarshal([]byte(out), &list)).To(Succeed(), out)
		Expect(list).To(HaveLen(2))
	})

	It("names the services and tasks that use a volume, refuses to delete it, and stops them with --force", func() {
		code, _, errOut := warren("volume", "create", "db-data")
		Expect(code).To(Equal(0), errOut)
		code, _, errOut = warren("service", "create", "postgres", "--image", "busybox", "--replicas", "1", "--volume", "db-data:/var/lib/postgresql/data")
		Expect(code).To(Equal(0), errOut)
		Expect(errOut).NotTo(ContainSubstring("not recommended"), "one replica is the way to use a local volume")
		eventually("volume", "inspect", "db-data").Should(MatchRegexp(`(?m)^Used By:
  - postgres \(service\)
  - postgres\.1\.\S+ \(task\)
Created: `))
		_, out, _ := warren("volume", "ls")
		Expect(out).To(MatchRegexp(`(?m)^db-data\s+local\s+\S+\s+worker-1\s+`), "placed with its first task")

		code, _, errOut = warren("volume", "delete", "db-data")
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring("volume db-data is used by service postgres"))
		Expect(errOut).To(ContainSubstring("--force"))

		vol := filepath.Join(dir, daemon.VolumesDir, "db-data")
		Eventually(func() error { _, err := os.Stat(vol); return err }, 10*time.Second, 50*time.Millisecond).Should(Succeed())
		code, out, errOut = warren("volume", "rm", "db-data", "--force")
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(ContainSubstring("Stopped service postgres (scaled to 0 replicas)"))
		Expect(out).To(ContainSubstring("Deleted volume db-data: its data is removed from node worker-1"))
		eventually("service", "ls").Should(MatchRegexp(`(?m)\spostgres\s+replicated\s+0/0\s`))
		Eventually(func() bool { _, err := os.Stat(vol); return os.IsNotExist(err) }, 10*time.Second, 50*time.Millisecond).Should(BeTrue())

		code, _, errOut = warren("volume", "inspect", "db-data")
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring(`no volume with ID or name "db-data"`))
	})

	It("deletes an unused volume, saying which", func() {
		code, _, errOut := warren("volume", "create", "scratch")
		Expect(code).To(Equal(0), errOut)
		code, out, errOut := warren("volume", "delete", "scratch", "-o", "json")
		Expect(code).To(Equal(0), errOut)
		var gone []api.VolumeDeletion
		Expect(json.Unmarshal([]byte(out), &gone)).To(Succeed(), out)
		Expect(gone).To(HaveExactElements(HaveField("Name", "scratch")))
		_, out, _ = warren("volume", "ls")
		Expect(out).NotTo(ContainSubstring("scratch"))
	})

	It("warns that the replicas of a service that mounts a local volume all run on its node", func() {
		code, _, errOut := warren("service", "create", "app", "--image", "busybox", "--replicas", "3", "--volume", "data:/data")
		Expect(code).To(Equal(0), errOut)
		Expect(errOut).To(ContainSubstring("Warning: service app has 3 replicas and mounts local volume data"))
		Expect(errOut).To(ContainSubstring("not recommended"))
	})

	It("refuses a driver other than local, and a node that does not exist", func() {
		code, _, errOut := warren("volume", "create", "shared-data", "--driver", "nfs")
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring(`volume driver "nfs" is not supported: use local`))
		code, _, errOut = warren("volume", "create", "data", "--node", "worker-9")
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring(`no node with ID or hostname "worker-9"`))
		_, out, _ := warren("volume", "ls")
		Expect(out).To(Equal("NAME  DRIVER  SIZE  NODE  CREATED\n"))
	})
})

var _ = Describe("volume create", func() {
	DescribeTable("refuses bad flags before it calls a manager",
		func(flag []string, message string) {
			args := append([]string{"--manager", "127.0.0.1:1", "volume", "create", "data"}, flag...)
			code, _, errOut := run(nil, args...)
			Expect(code).To(Equal(1))
			Expect(errOut).To(ContainSubstring(message))
			Expect(errOut).NotTo(ContainSubstring("127.0.0.1:1"))
		},
		Entry("a label without '='", []string{"--label", "env"}, `--label "env": use KEY=VALUE`),
		Entry("an option without a key", []string{"--opt", "=x"}, `--opt "=x": use KEY=VALUE`),
	)
})
