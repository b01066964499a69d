package cninet_test

// What the specs look at on the node: iptables rules, links, and sockets
// opened inside a container's network namespace.

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sys/unix"
)

// ioTimeout bounds each connect and read of a spec: the peers are on the
// node, so anything slower is a failure.
const ioTimeout = 5 * time.Second

// inNetns runs fn on an OS thread that is in the network namespace at
// path, so the sockets fn opens live there (they may be used from any
// thread afterwards). The thread is never unlocked: the runtime kills it
// when fn is done instead of handing it to other goroutines.
func inNetns(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", path, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// serve answers every TCP connection to port in the netns at path with
// "hello from NAME, you are REMOTE-IP", until the end of the spec.
func serve(path string, port int, name string) {
	GinkgoHelper()
	var l net.Listener
	Expect(inNetns(path, func() (err error) {
		l, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	})).To(Succeed())
	DeferCleanup(l.Close)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed at the end of the spec
			}
			remote := c.RemoteAddr().(*net.TCPAddr).IP
			_ = c.SetDeadline(time.Now().Add(ioTimeout))
			_, _ = fmt.Fprintf(c, "hello from %s, you are %s\n", name, remote)
			_ = c.Close()
		}
	}()
}

// fetch connects to addr, from the netns at path or from the node if path
// is "", and returns what the peer sent.
func fetch(path, addr string) (string, error) {
	var c net.Conn
	dial := func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, ioTimeout)
		return err
	}
	var err error
	if path == "" {
		err = dial()
	} else {
		err = inNetns(path, dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	b, err := io.ReadAll(c)
	return string(b), err
}

// eth0Addrs returns the IPv4 addresses (CIDR) of eth0 in the netns at path.
func eth0Addrs(path string) []string {
	GinkgoHelper()
	var cidrs []string
	Expect(inNetns(path, func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := ifc.Addrs()
		for _, a := range addrs {
			if p, perr := netip.ParsePrefix(a.String()); perr == nil && p.Addr().Is4() {
				cidrs = append(cidrs, p.String())
			}
		}
		return err
	})).To(Succeed())
	return cidrs
}

// defaultRoute returns "GATEWAY dev IFACE" for the IPv4 default route of
// the netns at path, or "" if it has none.
func defaultRoute(path string) string {
	GinkgoHelper()
	var route string
	Expect(inNetns(path, func() error {
		// thread-self, not self: this thread is the one in the netns.
		f, err := os.Open("/proc/thread-self/net/route")
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
			fs := strings.Fields(sc.Text())
			if len(fs) < 8 || fs[1] != "00000000" || fs[7] != "00000000" {
				continue
			}
			gw, err := hex.DecodeString(fs[2])
			if err != nil || len(gw) != 4 {
				return fmt.Errorf("gateway %q in /proc/net/route", fs[2])
			}
			// The kernel prints the address as a host-order (little
			// endian here) integer.
			var ip [4]byte
			binary.BigEndian.PutUint32(ip[:], binary.LittleEndian.Uint32(gw))
			route = fmt.Sprintf("%s dev %s", netip.AddrFrom4(ip), fs[0])
		}
		return sc.Err()
	})).To(Succeed())
	return route
}

// bridgePorts returns the interfaces enslaved to bridge.
func bridgePorts(bridge string) []string {
	GinkgoHelper()
	entries, err := os.ReadDir("/sys/class/net/" + bridge + "/brif")
	Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// deleteLink deletes the link (the bridge the plugin made; CNI DEL keeps
// it for the next container).
func deleteLink(name string) {
	GinkgoHelper()
	if _, err := net.InterfaceByName(name); err != nil {
		return // never made: the spec failed early
	}
	out, err := exec.Command("ip", "link", "delete", name).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "ip link delete %s: %s", name, out)
}

// setForwardPolicy sets the policy of the filter table's FORWARD chain
// until the end of the spec.
func setForwardPolicy(policy string) {
	GinkgoHelper()
	out, err := exec.Command("iptables", "--wait", "-S", "FORWARD").Output()
	Expect(err).NotTo(HaveOccurred(), "iptables -S FORWARD")
	var was string
	for _, line := range strings.Split(string(out), "\n") {
		if fs := strings.Fields(line); len(fs) == 3 && fs[0] == "-P" {
			was = fs[2]
		}
	}
	Expect(was).NotTo(BeEmpty(), "no FORWARD policy in %q", out)
	set := func(p string) {
		out, err := exec.Command("iptables", "--wait", "-P", "FORWARD", p).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "iptables -P FORWARD %s: %s", p, out)
	}
	set(policy)
	DeferCleanup(set, was)
}

// iptables is a parsed iptables-save: per table, its chains and its rules
// (the "-A CHAIN ..." lines, verbatim).
type iptables map[string]*iptablesTable

type iptablesTable struct {
	chains []string
	rules  []string
}

func iptablesSave() iptables {
	GinkgoHelper()
	out, err := exec.Command("iptables-save").Output()
	Expect(err).NotTo(HaveOccurred(), "iptables-save")
	ipt := iptables{}
	var cur *iptablesTable
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			cur = &iptablesTable{}
			ipt[line[1:]] = cur
		case cur != nil && strings.HasPrefix(line, ":"):
			cur.chains = append(cur.chains, strings.Fields(line[1:])[0])
		case cur != nil && strings.HasPrefix(line, "-A "):
			cur.rules = append(cur.rules, line)
		}
	}
	return ipt
}

// linesMentioning returns the rules that contain any of words.
func linesMentioning(ipt iptables, words ...string) []string {
	var hits []string
	for name, t := range ipt {
		for _, r := range t.rules {
			for _, w := range words {
				if strings.Contains(r, w) {
					hits = append(hits, name+": "+r)
					break
				}
			}
		}
	}
	return hits
}

// cniChains returns "table/chain" for every chain whose name starts with
// CNI-, sorted.
func cniChains(ipt iptables) []string {
	var chains []string
	for name, t := range ipt {
		for _, c := range t.chains {
			if strings.HasPrefix(c, "CNI-") {
				chains = append(chains, name+"/"+c)
			}
		}
	}
	slices.Sort(chains)
	return chains
}

// sharedCNIChains are the chains the plugins create once per node and keep
// on DEL; the others (CNI-<hash>, CNI-DN-<hash>) are one container's.
var sharedCNIChains = []string{"CNI-ADMIN", "CNI-FORWARD", "CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"}

// cniIdle says whether no container on the node uses CNI's iptables
// chains: then the shared ones can go.
func cniIdle(ipt iptables) bool {
	for _, t := range ipt {
		for _, c := range t.chains {
			if strings.HasPrefix(c, "CNI-") && !slices.Contains(sharedCNIChains, c) {
				return false
			}
		}
		for _, r := range t.rules {
			// firewall's per-container ACCEPT rules
			if strings.HasPrefix(r, "-A CNI-FORWARD ") && (strings.Contains(r, " -s ") || strings.Contains(r, " -d ")) {
				return false
			}
		}
	}
	return true
}

// removeIdleCNIChains deletes the CNI- chains that were not in before,
// with the rules that jump to them, unless some container still uses CNI
// (another test of the node may, concurrently).
func removeIdleCNIChains(before iptables) {
	GinkgoHelper()
	after := iptablesSave()
	if !cniIdle(after) {
		return
	}
	fresh := map[string][]string{}
	for name, t := range after {
		for _, c := range t.chains {
			if strings.HasPrefix(c, "CNI-") && (before[name] == nil || !slices.Contains(before[name].chains, c)) {
				fresh[name] = append(fresh[name], c)
			}
		}
	}
	deleteRules(after, fresh, func(string) bool { return false })
}

// dropRulesMentioning deletes, as a reboot would, the rules that contain
// any of words and the per-container CNI chains they jump to.
func dropRulesMentioning(words ...string) {
	GinkgoHelper()
	ipt := iptablesSave()
	mentions := func(r string) bool {
		return slices.ContainsFunc(words, func(w string) bool { return strings.Contains(r, w) })
	}
	targets := map[string][]string{}
	for name, t := range ipt {
		for _, r := range t.rules {
			if c := jumpTarget(r); mentions(r) && strings.HasPrefix(c, "CNI-") && !slices.Contains(sharedCNIChains, c) {
				targets[name] = append(targets[name], c)
			}
		}
	}
	deleteRules(ipt, targets, mentions)
}

// jumpTarget returns the chain rule jumps or goes to, or "".
func jumpTarget(rule string) string {
	fs := strings.Fields(rule)
	for i := 2; i+1 < len(fs); i++ {
		if fs[i] == "-j" || fs[i] == "-g" {
			return fs[i+1]
		}
	}
	return ""
}

// deleteRules deletes, in one iptables-restore, the chains (per table),
// the rules that jump to them and the other rules drop selects.
func deleteRules(ipt iptables, chains map[string][]string, drop func(rule string) bool) {
	GinkgoHelper()
	var script strings.Builder
	for name, t := range ipt {
		var lines []string
		for _, r := range t.rules {
			chain := strings.Fields(r)[1]
			if slices.Contains(chains[name], chain) {
				continue // flushed below
			}
			if drop(r) || slices.Contains(chains[name], jumpTarget(r)) {
				lines = append(lines, "-D "+strings.TrimPrefix(r, "-A "))
			}
		}
		for _, c := range chains[name] {
			lines = append(lines, "-F "+c)
		}
		for _, c := range chains[name] {
			lines = append(lines, "-X "+c)
		}
		if len(lines) > 0 {
			fmt.Fprintf(&script, "*%s\n%s\nCOMMIT\n", name, strings.Join(lines, "\n"))
		}
	}
	if script.Len() == 0 {
		return
	}
	cmd := exec.Command("iptables-restore", "--noflush", "--wait")
	cmd.Stdin = strings.NewReader(script.String())
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "iptables-restore:\n%s\n%s", script.String(), out)
}
