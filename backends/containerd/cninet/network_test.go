package cninet_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"golang.org/x/sys/unix"

	"github.com/warren-orchestrator/warren/backends/containerd/cninet"
)

var _ = Describe("New", func() {
	It("names the missing plugins and the package to install", func() {
		_, err := cninet.New(cninet.Config{PluginDirs: []string{GinkgoT().TempDir(), "/nonexistent/cni"}})
		Expect(err).To(MatchError(cninet.ErrPluginsMissing))
		Expect(err.Error()).To(And(
			ContainSubstring("bridge, host-local, portmap, firewall, loopback"),
			ContainSubstring("apt-get install containernetworking-plugins"),
			ContainSubstring("/nonexistent/cni"),
		))
	})

	DescribeTable("rejects a malformed config",
		func(cfg cninet.Config, want string) {
			_, err := cninet.New(cfg)
			Expect(err).To(MatchError(cninet.ErrInvalid))
			Expect(err.Error()).To(ContainSubstring(want))
		},
		Entry("a bridge name longer than Linux allows", cninet.Config{Bridge: "warren-bridge-0123"}, "1 to 15"),
		Entry("an IPv6 subnet", cninet.Config{Subnet: "fd00::/64"}, "IPv4 prefix"),
		Entry("a subnet too small for a gateway and a container", cninet.Config{Subnet: "10.89.0.0/31"}, "/30 or wider"),
		Entry("a subnet with host bits", cninet.Config{Subnet: "10.89.0.1/16"}, "did you mean 10.89.0.0/16"),
		Entry("a relative state dir", cninet.Config{StateDir: "state"}, "StateDir"),
	)
})

// The specs share the node's iptables chains, which their cleanup removes
// once idle: they must not run beside each other.
var _ = Describe("Network", Label("integ"), Serial, func() {
	var (
		tn    testNet
		ports []cninet.Port
		att   cninet.Attachment
		err   error
	)
	BeforeEach(func() {
		tn = newNetwork(24)
		ports = []cninet.Port{{HostPort: tn.hostPort(0), ContainerPort: 80, Protocol: "tcp"}}
	})

	When("a container is set up", func() {
		JustBeforeEach(func(ctx SpecContext) {
			att, err = tn.Setup(ctx, "c1", ports)
		})

		It("gives it a netns with an address in the subnet and a default route via the bridge", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(att.NetnsPath).To(Equal(filepath.Join(tn.cfg.NetnsDir, "c1")))
			Expect(netip.MustParsePrefix(tn.cfg.Subnet).Contains(att.IP)).To(BeTrue(), "%s in %s", att.IP, tn.cfg.Subnet)
			Expect(eth0Addrs(att.NetnsPath)).To(Equal([]string{att.IP.String() + "/24"}))
			Expect(defaultRoute(att.NetnsPath)).To(Equal(tn.gateway() + " dev eth0"))
		})

		It("lists it as attached", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(tn.Attached()).To(Equal([]string{"c1"}))
		})

		It("refuses to set it up again, and keeps it", func(ctx SpecContext) {
			Expect(err).NotTo(HaveOccurred())
			_, err2 := tn.Setup(ctx, "c1", ports)
			Expect(err2).To(MatchError(cninet.ErrAttached))
			Expect(err2.Error()).To(ContainSubstring("call Teardown for c1 first"))
			Expect(eth0Addrs(att.NetnsPath)).To(Equal([]string{att.IP.String() + "/24"}))
		})

		DescribeTable("publishes its port",
			func(from func() string, addr func() string) {
				Expect(err).NotTo(HaveOccurred())
				serve(att.NetnsPath, 80, "c1")
				Expect(fetch(from(), addr())).To(HavePrefix("hello from c1,"))
			},
			Entry("to the node on 127.0.0.1",
				func() string { return "" },
				func() string { return fmt.Sprintf("127.0.0.1:%d", tn.hostPort(0)) }),
			Entry("to the node on its other addresses (the bridge's)",
				func() string { return "" },
				func() string { return fmt.Sprintf("%s:%d", tn.gateway(), tn.hostPort(0)) }),
			Entry("to the container itself, through the node (hairpin)",
				func() string { return att.NetnsPath },
				func() string { return fmt.Sprintf("%s:%d", tn.gateway(), tn.hostPort(0)) }),
		)

		It("can be torn down by a restarted worker from its id alone", func(ctx SpecContext) {
			Expect(err).NotTo(HaveOccurred())
			restarted, err := cninet.New(tn.cfg)
			Expect(err).NotTo(HaveOccurred())
			Expect(restarted.Attached()).To(Equal([]string{"c1"}))
			Expect(restarted.Teardown(ctx, "c1")).To(Succeed())
			Expect(linesMentioning(iptablesSave(), fmt.Sprint(tn.hostPort(0)), att.IP.String()+"/")).To(BeEmpty())
			Expect(restarted.Attached()).To(BeEmpty())
		})

		DescribeTable("routes what it sends off the subnet through the node, masqueraded",
			func(ctx SpecContext, forwardPolicy string) {
				Expect(err).NotTo(HaveOccurred())
				setForwardPolicy(forwardPolicy)
				// "Outside" is a container on a second bridge: the node
				// must forward between the bridges and masquerade, as it
				// would towards its uplink, and the traffic stays on the
				// node.
				outside := newNetwork(24)
				ext, err := outside.Setup(ctx, "outside", nil)
				Expect(err).NotTo(HaveOccurred())
				serve(ext.NetnsPath, 8080, "outside")
				Expect(fetch(att.NetnsPath, fmt.Sprintf("%s:8080", ext.IP))).
					To(Equal(fmt.Sprintf("hello from outside, you are %s\n", outside.gateway())))
			},
			Entry("when the node forwards by default", "ACCEPT"),
			Entry("when the node's FORWARD policy is DROP, as Docker sets it", "DROP"),
		)
	})

	When("two containers are set up", func() {
		var att2 cninet.Attachment
		var err2 error
		JustBeforeEach(func(ctx SpecContext) {
			att, err = tn.Setup(ctx, "c1", ports)
			att2, err2 = tn.Setup(ctx, "c2", []cninet.Port{{HostPort: tn.hostPort(1), ContainerPort: 80}})
		})

		It("gives them distinct addresses from which they reach each other directly", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(err2).NotTo(HaveOccurred())
			Expect(att.IP).NotTo(Equal(att2.IP))
			serve(att.NetnsPath, 80, "c1")
			Expect(fetch(att2.NetnsPath, fmt.Sprintf("%s:80", att.IP))).
				To(Equal(fmt.Sprintf("hello from c1, you are %s\n", att2.IP)))
		})

		It("lists both as attached, and only the other once one is torn down", func(ctx SpecContext) {
			Expect(err).NotTo(HaveOccurred())
			Expect(err2).NotTo(HaveOccurred())
			Expect(tn.Attached()).To(Equal([]string{"c1", "c2"}))
			Expect(tn.Teardown(ctx, "c1")).To(Succeed())
			Expect(tn.Attached()).To(Equal([]string{"c2"}))
		})

		It("publishes each one's port to that one", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(err2).NotTo(HaveOccurred())
			serve(att.NetnsPath, 80, "c1")
			serve(att2.NetnsPath, 80, "c2")
			Expect(fetch("", fmt.Sprintf("127.0.0.1:%d", tn.hostPort(0)))).To(HavePrefix("hello from c1,"))
			Expect(fetch("", fmt.Sprintf("127.0.0.1:%d", tn.hostPort(1)))).To(HavePrefix("hello from c2,"))
		})
	})

	When("a container is torn down", func() {
		JustBeforeEach(func(ctx SpecContext) {
			att, err = tn.Setup(ctx, "c1", ports)
			Expect(err).NotTo(HaveOccurred())
			Expect(linesMentioning(iptablesSave(), fmt.Sprint(tn.hostPort(0)))).NotTo(BeEmpty(), "no DNAT rule to remove")
			err = tn.Teardown(ctx, "c1")
		})

		It("removes its DNAT and masquerade rules", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(linesMentioning(iptablesSave(), fmt.Sprint(tn.hostPort(0)), att.IP.String()+"/", att.IP.String()+":")).To(BeEmpty())
			_, ferr := fetch("", fmt.Sprintf("127.0.0.1:%d", tn.hostPort(0)))
			Expect(ferr).To(HaveOccurred(), "the port is still published")
		})

		It("removes its netns file and no longer lists it", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(att.NetnsPath).NotTo(BeAnExistingFile())
			Expect(tn.Attached()).To(BeEmpty())
		})

		It("removes its veth from the bridge", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(bridgePorts(tn.cfg.Bridge)).To(BeEmpty())
		})

		It("succeeds when called again", func(ctx SpecContext) {
			Expect(err).NotTo(HaveOccurred())
			Expect(tn.Teardown(ctx, "c1")).To(Succeed())
			Expect(tn.Teardown(ctx, "c1")).To(Succeed())
		})
	})

	When("the subnet has room for one container", func() {
		var one testNet
		BeforeEach(func(ctx SpecContext) {
			// A /30 holds the gateway and one container: a second
			// Setup gets an address only if Teardown released the first.
			one = newNetwork(30)
			ports = []cninet.Port{{HostPort: one.hostPort(0), ContainerPort: 80}}
			att, err = one.Setup(ctx, "c1", ports)
			Expect(err).NotTo(HaveOccurred())
		})

		It("gives the address to the next container once the first is torn down", func(ctx SpecContext) {
			Expect(one.Teardown(ctx, "c1")).To(Succeed())
			att2, err := one.Setup(ctx, "c2", nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(att2.IP).To(Equal(att.IP))
		})

		It("lists it after a reboot lost its netns, and Teardown frees its address", func(ctx SpecContext) {
			// What a reboot does: the netns (on tmpfs) and every rule go;
			// host-local's allocation (on disk) stays.
			Expect(unix.Unmount(att.NetnsPath, unix.MNT_DETACH)).To(Succeed())
			Expect(os.Remove(att.NetnsPath)).To(Succeed())
			dropRulesMentioning(att.IP.String()+"/", fmt.Sprintf(`name: \"warren-%s\" id: \"c1\"`, one.cfg.Bridge))

			Expect(one.Attached()).To(Equal([]string{"c1"}))
			Expect(one.Teardown(ctx, "c1")).To(Succeed())
			Expect(one.Attached()).To(BeEmpty())
			att2, err := one.Setup(ctx, "c2", nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(att2.IP).To(Equal(att.IP))
		})

		It("fails a second container's Setup and leaves nothing of it behind", func(ctx SpecContext) {
			ports2 := []cninet.Port{{HostPort: one.hostPort(1), ContainerPort: 80}}
			_, err := one.Setup(ctx, "c2", ports2)
			Expect(err).To(MatchError(ContainSubstring("attach c2 to bridge " + one.cfg.Bridge)))
			Expect(filepath.Join(one.cfg.NetnsDir, "c2")).NotTo(BeAnExistingFile())
			Expect(one.Attached()).To(Equal([]string{"c1"}))
			Expect(linesMentioning(iptablesSave(), fmt.Sprint(one.hostPort(1)), fmt.Sprintf(`name: \"warren-%s\" id: \"c2\"`, one.cfg.Bridge))).To(BeEmpty())
			// The veth goes with the netns, which the kernel frees
			// asynchronously.
			Eventually(func() []string { return bridgePorts(one.cfg.Bridge) }).Should(HaveLen(1))
		})
	})

	When("Teardown is called for a container never set up", func() {
		It("succeeds and changes nothing", func(ctx SpecContext) {
			before := linesMentioning(iptablesSave(), "CNI-")
			Expect(tn.Teardown(ctx, "never")).To(Succeed())
			Expect(linesMentioning(iptablesSave(), "CNI-")).To(ConsistOf(before))
			_, statErr := os.Stat(tn.cfg.NetnsDir)
			Expect(errors.Is(statErr, os.ErrNotExist)).To(BeTrue(), "Teardown made %s", tn.cfg.NetnsDir)
		})
	})
})
