package cninet_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"golang.org/x/sys/unix"

	"github.com/warren-orchestrator/warren/backends/containerd/cninet"
)

func TestCNINet(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "CNI Network Suite")
}

// cniCacheDir is libcni's result cache: go-cni v1.1.9 has no option to
// move it, so the specs use the node's and clean it up.
const cniCacheDir = "/var/lib/cni"

// suiteLock is held by the run of this suite that uses the node.
const suiteLock = "/run/lock/warren-cninet-specs.lock"

var _ = BeforeSuite(func() {
	if !Label("integ").MatchesLabelFilter(GinkgoLabelFilter()) {
		return // no integration spec runs
	}
	Expect(os.Geteuid()).To(Equal(0), "the cninet specs make network namespaces, bridges and iptables rules: run them as root (or filter out the integ label)")
	for _, bin := range []string{"iptables-save", "iptables-restore", "ip"} {
		_, err := exec.LookPath(bin)
		Expect(err).NotTo(HaveOccurred(), "%s is missing: install Debian's iptables and iproute2 (bash ci/install-deps.sh)", bin)
	}
	_, err := cninet.New(cninet.Config{})
	Expect(err).NotTo(HaveOccurred(), "CNI plugins: run bash ci/install-deps.sh")

	// Two runs of this suite on one node (two developers' `go test ./...`)
	// would use the same bridges, subnets and ports: the second waits.
	lock, err := os.OpenFile(suiteLock, os.O_RDWR|os.O_CREATE, 0o644)
	Expect(err).NotTo(HaveOccurred())
	if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		GinkgoWriter.Printf("waiting for another run of the cninet specs to release %s\n", suiteLock)
		Expect(unix.Flock(int(lock.Fd()), unix.LOCK_EX)).To(Succeed())
	}
	DeferCleanup(lock.Close) // releases the lock
	sweepDeadRuns()

	// Setup turns forwarding on for good, as a worker needs; the suite
	// leaves the node as it found it.
	const forwardPath = "/proc/sys/net/ipv4/ip_forward"
	forward, err := os.ReadFile(forwardPath)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(os.WriteFile(forwardPath, forward, 0o644)).To(Succeed()) })

	if _, err := os.Stat(cniCacheDir); errors.Is(err, os.ErrNotExist) {
		DeferCleanup(func() {
			// Only if empty: anything left is not the suite's to drop.
			_ = os.Remove(filepath.Join(cniCacheDir, "results"))
			_ = os.Remove(cniCacheDir)
		})
	}
})

// specNetworks counts the networks the specs made, to give each its own
// bridge, subnet and host ports.
var specNetworks = 0

// testNet is a network of one spec and what identifies it on the node.
type testNet struct {
	*cninet.Network
	cfg cninet.Config
	// n numbers the network; host ports of the spec are 20000+100n+i.
	n int
}

// hostPort is the spec's i-th host port (i < 100).
func (t testNet) hostPort(i int) int { return 20000 + 100*t.n + i }

// gateway is the bridge's address: the subnet's first.
func (t testNet) gateway() string {
	return fmt.Sprintf("10.231.%d.1", t.n)
}

// newNetwork returns a Network on a bridge and subnet of its own
// (wtest<n>, 10.231.<n>.0/<bits>) with state in temp dirs. At the end of
// the spec it tears down what the spec left attached, deletes the bridge,
// removes the iptables chains CNI made if no other container uses CNI on
// the node, and checks that no rule of the spec remains.
func newNetwork(bits int) testNet {
	GinkgoHelper()
	specNetworks++
	n := specNetworks
	dir := GinkgoT().TempDir()
	cfg := cninet.Config{
		Bridge:   fmt.Sprintf("wtest%d", n),
		Subnet:   fmt.Sprintf("10.231.%d.0/%d", n, bits),
		StateDir: filepath.Join(dir, "state"),
		NetnsDir: filepath.Join(dir, "netns"),
	}
	net, err := cninet.New(cfg)
	Expect(err).NotTo(HaveOccurred())
	t := testNet{Network: net, cfg: cfg, n: n}

	before := iptablesSave()
	DeferCleanup(func(ctx SpecContext) {
		ids, err := net.Attached()
		Expect(err).NotTo(HaveOccurred())
		for _, id := range ids {
			Expect(net.Teardown(ctx, id)).To(Succeed())
		}
		deleteLink(cfg.Bridge)
		removeIdleCNIChains(before)
		after := iptablesSave()
		Expect(linesMentioning(after, "warren-"+cfg.Bridge, fmt.Sprintf("10.231.%d.", n), fmt.Sprint(t.hostPort(0)))).
			To(BeEmpty(), "iptables rules of the spec's network remain")
		if cniIdle(after) {
			Expect(cniChains(after)).To(Equal(cniChains(before)), "CNI chains the spec created remain")
		}
		left, _ := filepath.Glob(filepath.Join(cniCacheDir, "results", "warren-"+cfg.Bridge+"-*"))
		Expect(left).To(BeEmpty(), "CNI cache entries of the spec's network remain")
	})
	return t
}

// sweepDeadRuns removes what a run of this suite that was killed (so ran
// no cleanup) left: its netns mounts, bridges, iptables rules and CNI
// cache entries. Under suiteLock, all of them are dead.
func sweepDeadRuns() {
	GinkgoHelper()
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	Expect(err).NotTo(HaveOccurred())
	ours := regexp.MustCompile("^" + regexp.QuoteMeta(os.TempDir()) + `/ginkgo\d+/netns/[^/]+$`)
	for _, line := range strings.Split(string(mountinfo), "\n") {
		fs := strings.Fields(line)
		if i := slices.Index(fs, "-"); i > 4 && i+1 < len(fs) && fs[i+1] == "nsfs" && ours.MatchString(fs[4]) {
			GinkgoWriter.Printf("removing netns %s of a dead run\n", fs[4])
			Expect(unix.Unmount(fs[4], unix.MNT_DETACH)).To(Succeed())
			Expect(os.Remove(fs[4])).To(Succeed())
		}
	}
	links, err := net.Interfaces()
	Expect(err).NotTo(HaveOccurred())
	for _, l := range links {
		if regexp.MustCompile(`^wtest\d+$`).MatchString(l.Name) {
			GinkgoWriter.Printf("removing bridge %s of a dead run\n", l.Name)
			deleteLink(l.Name)
		}
	}
	dropRulesMentioning(`name: \"warren-wtest`, "10.231.")
	left, _ := filepath.Glob(filepath.Join(cniCacheDir, "results", "warren-wtest*"))
	for _, f := range left {
		Expect(os.Remove(f)).To(Succeed())
	}
}
