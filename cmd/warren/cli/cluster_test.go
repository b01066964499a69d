package cli_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/daemon"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
)

func freeAddr() string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().String()
}

// startCluster runs a one-node cluster in this process, as `warren cluster
// init` would, on the simulated runtime, and returns the global flags that
// reach it.
func startCluster() (dir string, global []string) {
	GinkgoHelper()
	return startClusterWith(func(*daemon.Config) {})
}

// startClusterWith is startCluster with the node's config changed by
// change first.
func startClusterWith(change func(*daemon.Config)) (dir string, global []string) {
	GinkgoHelper()
	dir = filepath.Join(GinkgoT().TempDir(), "node")
	cfg := daemon.Config{
		DataDir: dir, APIAddr: freeAddr(), RaftAddr: freeAddr(), Runtime: daemon.RuntimeSimulated,
		Heartbeat:  50 * time.Millisecond,
		Dispatcher: dispatcher.Config{TTL: time.Second, Grace: time.Second},
	}
	change(&cfg)
	ready := make(chan struct{})
	cfg.Ready = func(*daemon.Node) { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.Init(ctx, cfg) }()
	DeferCleanup(func() {
		cancel()
		Eventually(done, 20*time.Second).Should(Receive())
	})
	select {
	case <-ready:
	case err := <-done:
		Fail("init: " + err.Error())
	}
	return dir, []string{"--data-dir", dir, "--manager", cfg.APIAddr}
}

var _ = Describe("Cluster commands", Label("integ"), func() {
	var (
		dir    string
		global []string
	)
	BeforeEach(func() { dir, global = startCluster() })

	warren := func(args ...string) (int, string, string) { return run(nil, append(global, args...)...) }

	It("show the cluster, its nodes and its join tokens", func() {
		code, out, errOut := warren("cluster", "info")
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(ContainSubstring("Leader:"))
		Expect(out).To(MatchRegexp(`(?m)^\S+\s+leader\s+127\.0\.0\.1:\d+\s+127\.0\.0\.1:\d+\s+reachable$`))

		code, out, _ = warren("cluster", "join-token", "worker", "-q")
		Expect(code).To(Equal(0))
		Expect(strings.TrimSpace(out)).To(MatchRegexp(`^WRN-1-[0-9a-f]{64}-[a-z2-7]{32}$`))
		old := out

		code, out, _ = warren("cluster", "join-token", "worker", "--rotate")
		Expect(code).To(Equal(0))
		Expect(out).To(ContainSubstring("rotated"))
		Expect(out).NotTo(ContainSubstring(strings.TrimSpace(old)))

		code, _, errOut = warren("cluster", "join-token", "admin")
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring("use worker or manager"))

		Eventually(func() string { _, out, _ := warren("node", "ls"); return out }, 10*time.Second, 50*time.Millisecond).
			Should(MatchRegexp(`(?m)^\S+\s+\S+\s+manager\s+ready\s+active\s+127\.0\.0\.1:\d+$`))
	})

	It("create, list, inspect and remove a service, and change a node", func() {
		code, _, errOut := warren("service", "create", "web", "--image", "busybox", "--replicas", "2", "-e", "A=1", "-p", "8080:80", "--constraint", "node.role==manager")
		Expect(code).To(Equal(0), errOut)
		code, _, errOut = warren("service", "create", "web", "--image", "busybox")
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring(`service name "web" is already used`))
		Eventually(func() string { _, out, _ := warren("service", "ls"); return out }, 10*time.Second, 50*time.Millisecond).
			Should(MatchRegexp(`(?m)^\S+\s+web\s+replicated\s+1/2\s+busybox$`), "one node can publish host port 8080 once")
		code, out, _ := warren("service", "ps", "web")
		Expect(code).To(Equal(0))
		Expect(regexp.MustCompile(`(?m)\srunning\s+running\s*$`).FindAllString(out, -1)).To(HaveLen(1))
		code, out, _ = warren("service", "inspect", "web", "-o", "json")
		Expect(code).To(Equal(0))
		Expect(out).To(ContainSubstring(`"HostPort": 8080`))

		_, out, _ = warren("node", "ls", "-o", "json")
		id := out[strings.Index(out, `"ID": "`)+7:]
		id = id[:strings.Index(id, `"`)]
		code, _, errOut = warren("node", "update", id, "--availability", "drain", "--label-add", "disk=ssd")
		Expect(code).To(Equal(0), errOut)
		_, out, _ = warren("node", "inspect", id)
		Expect(out).To(MatchRegexp(`Availability:\s+drain`))
		Expect(out).To(MatchRegexp(`Labels:\s+disk=ssd`))
		code, _, errOut = warren("node", "rm", id)
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring("is up"))

		code, _, _ = warren("service", "rm", "web")
		Expect(code).To(Equal(0))
		code, _, errOut = warren("service", "inspect", "web")
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring("not found"))
	})

	It("back up to a file that restores, and refuse a restore into a used directory", func() {
		file := filepath.Join(GinkgoT().TempDir(), "b.tar.gz")
		code, out, errOut := warren("cluster", "backup", "--output", file)
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(ContainSubstring("Backed up cluster"))
		st, err := os.Stat(file)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mode().Perm()).To(Equal(os.FileMode(0o600)))

		code, _, errOut = run(nil, "cluster", "restore", "--input", file, "--data-dir", dir)
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring("already holds a node"))
		fresh := filepath.Join(GinkgoT().TempDir(), "fresh")
		code, out, errOut = run(nil, "cluster", "restore", "--input", file, "--data-dir", fresh)
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(ContainSubstring("init --force-new-cluster --data-dir " + fresh))
	})
})

var _ = Describe("Client commands without a cluster", func() {
	It("name the missing credentials and the unreachable manager", func() {
		empty := GinkgoT().TempDir()
		code, _, errOut := run(nil, "--data-dir", empty, "node", "ls")
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring("warren cluster init"))

		dir, _ := startCluster()
		dead := freeAddr()
		code, _, errOut = run(nil, "--data-dir", dir, "--manager", dead, "node", "ls")
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring("no manager reachable"))
		Expect(errOut).To(ContainSubstring(dead))
	})

	DescribeTable("refuse bad flags before doing anything",
		func(args []string, want string) {
			code, _, errOut := run(nil, args...)
			Expect(code).To(Equal(1))
			Expect(errOut).To(ContainSubstring(want))
		},
		Entry("join without a token", []string{"worker", "join", "--manager", "127.0.0.1:1"}, "needs --manager"),
		Entry("a malformed token", []string{"--data-dir", "/nonexistent/x", "worker", "join", "--manager", "127.0.0.1:1", "--token", "abc"}, "WRN-1-"),
		Entry("init on an unspecified address", []string{"--data-dir", "/nonexistent/x", "cluster", "init", "--api-addr", "0.0.0.0:8080"}, "give this machine's IP address"),
		Entry("the same port twice", []string{"--data-dir", "/nonexistent/x", "cluster", "init", "--api-addr", "127.0.0.1:9", "--advertise-addr", "127.0.0.1:9"}, "give each its own port"),
		Entry("restore without input", []string{"cluster", "restore"}, "needs --input"),
		Entry("restore of a file that is not a backup", []string{"cluster", "restore", "--input", "/etc/hostname", "--data-dir", "/tmp/warren-cli-test-never"}, "not a gzip file"),
		Entry("service without image", []string{"service", "create", "x"}, "needs --image"),
		Entry("a bad publish", []string{"service", "create", "x", "--image", "i", "-p", "80"}, "use HOST:CONTAINER"),
		Entry("an unknown consensus", []string{"sim", "--consensus", "paxos", "x.yaml"}, "must be one of model, raft"),
		Entry("real raft inside a test binary", []string{"sim", "--consensus", "raft", "../../../scenarios/partition.yaml"}, "runs in the warren binary only"),
		Entry("a model-only variant on real raft", []string{"sim", "--consensus", "raft", "--broken", "ignore-volumes", "../../../scenarios/partition.yaml"}, "use ack-before-commit, stale-read or forgetful-restart"),
	)
})
