// Package cninet gives each container a network namespace of its own,
// attached to a bridge on the node with outbound access (masqueraded), and
// publishes container ports on the node with iptables DNAT. It does so
// through CNI: github.com/containerd/go-cni drives Debian's plugin binaries
// (package containernetworking-plugins): bridge with host-local IPAM,
// portmap, firewall and loopback.
//
// The namespace of container id is bind-mounted on Config.NetnsDir/id, so
// that it outlives any process: the containerd runtime puts that path in
// the OCI spec. Setup records each container's ports in Config.StateDir,
// so Teardown needs only the id, and a restarted worker finds the
// leftovers to tear down with Attached, even after a reboot.
package cninet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	gocni "github.com/containerd/go-cni"
)

// Defaults of Config's fields.
const (
	DefaultBridge   = "warren0"
	DefaultSubnet   = "10.89.0.0/16" // not 10.88.0.0/16: containerd's CRI plugin uses that
	DefaultStateDir = "/var/lib/warren/cni"
	DefaultNetnsDir = "/run/warren/netns"
)

// defaultPluginDirs are where Debian's containernetworking-plugins and the
// upstream release tarballs put the plugin binaries.
var defaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// pluginTypes are the CNI plugin binaries Setup runs.
var pluginTypes = []string{"bridge", "host-local", "portmap", "firewall", "loopback"}

// Errors returned by this package, wrapped with details.
var (
	// ErrPluginsMissing: a CNI plugin binary is in none of Config.PluginDirs.
	ErrPluginsMissing = errors.New("cninet: CNI plugins missing")
	// ErrInvalid: a Config field, a container id or a Port is malformed.
	ErrInvalid = errors.New("cninet: invalid argument")
	// ErrAttached: Setup was called for an id that is attached already.
	ErrAttached = errors.New("cninet: container already attached")
)

// Config says where the plugins are, which bridge and subnet to use and
// where to keep state. Zero fields take the Default* values.
type Config struct {
	// PluginDirs are searched in order for the CNI plugin binaries;
	// default /usr/lib/cni (Debian's), then /opt/cni/bin (upstream's).
	PluginDirs []string
	// Bridge is the Linux bridge the containers attach to; it also names
	// the CNI network, so two Networks with different bridges don't share
	// IPAM state or iptables chains.
	Bridge string
	// Subnet is the IPv4 prefix containers get addresses from; its first
	// address is the bridge's (the containers' gateway).
	Subnet string
	// StateDir keeps host-local's IP allocations (StateDir/ipam) and a
	// record of each attached container's ports (StateDir/containers).
	// (libcni's result cache stays in /var/lib/cni: go-cni v1.1.9 cannot
	// move it; DEL empties it.)
	StateDir string
	// NetnsDir holds a bind-mounted network namespace file per container.
	NetnsDir string
	// Owner, when set, keeps this Network's records and network
	// namespaces apart from those of other Networks on the same bridge
	// (under StateDir/containers/Owner and NetnsDir/Owner), so that
	// Attached lists only its own: several nodes may share one machine's
	// bridge and IP allocations (StateDir/ipam) without sweeping each
	// other's containers.
	Owner string
}

// Port publishes ContainerPort of a container on HostPort of every address
// of the node, 127.0.0.1 included.
type Port struct {
	HostPort      int
	ContainerPort int
	// Protocol is "tcp" or "udp"; empty means "tcp".
	Protocol string
}

// Attachment is where a container's network lives.
type Attachment struct {
	// NetnsPath is the network namespace to put in the container's OCI
	// spec (its "network" namespace path).
	NetnsPath string
	// IP is the container's address on the bridge.
	IP netip.Addr
}

// Network attaches containers to one bridge. Its methods may be called
// concurrently, but not for the same id.
type Network struct {
	cfg Config
	cni gocni.CNI
}

// ifName is the container side of the veth pair: go-cni names the first
// network's interface eth0 (prefix "eth", index 0).
const ifName = "eth0"

// cleanupTimeout bounds the undo of a failed Setup, which runs even when
// the caller's context is done.
const cleanupTimeout = 30 * time.Second

// New checks cfg and that the plugin binaries are installed. It changes
// nothing on the node: Setup does.
func New(cfg Config) (*Network, error) {
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = defaultPluginDirs
	}
	cfg.PluginDirs = slices.Clone(cfg.PluginDirs)
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.Subnet == "" {
		cfg.Subnet = DefaultSubnet
	}
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	if cfg.NetnsDir == "" {
		cfg.NetnsDir = DefaultNetnsDir
	}
	if cfg.Owner != "" {
		if err := checkID(cfg.Owner); err != nil {
			return nil, fmt.Errorf("%w: owner: %v", ErrInvalid, err)
		}
		cfg.NetnsDir = filepath.Join(cfg.NetnsDir, cfg.Owner)
	}
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if err := checkPlugins(cfg.PluginDirs); err != nil {
		return nil, err
	}
	conflist, err := confList(cfg)
	if err != nil {
		return nil, err
	}
	cni, err := gocni.New(gocni.WithPluginDir(cfg.PluginDirs), gocni.WithInterfacePrefix("eth"))
	if err != nil {
		return nil, fmt.Errorf("cninet: init go-cni: %w", err)
	}
	// The bridge network first, so that it gets eth0; then lo, which
	// loopback brings up.
	if err := cni.Load(gocni.WithConfListBytes(conflist), gocni.WithLoNetwork); err != nil {
		return nil, fmt.Errorf("cninet: load CNI config for bridge %s: %w", cfg.Bridge, err)
	}
	return &Network{cfg: cfg, cni: cni}, nil
}

// bridgeName is what Linux accepts as an interface name (IFNAMSIZ-1).
var bridgeName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,15}$`)

func checkConfig(cfg Config) error {
	if !bridgeName.MatchString(cfg.Bridge) {
		return fmt.Errorf("%w: bridge name %q: use 1 to 15 letters, digits, '_', '.' or '-'", ErrInvalid, cfg.Bridge)
	}
	p, err := netip.ParsePrefix(cfg.Subnet)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return fmt.Errorf("%w: subnet %q: give an IPv4 prefix of /30 or wider, such as %s", ErrInvalid, cfg.Subnet, DefaultSubnet)
	}
	if p.Masked() != p {
		return fmt.Errorf("%w: subnet %q has host bits set: did you mean %s?", ErrInvalid, cfg.Subnet, p.Masked())
	}
	for name, dir := range map[string]string{"StateDir": cfg.StateDir, "NetnsDir": cfg.NetnsDir} {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("%w: %s %q is not an absolute path", ErrInvalid, name, dir)
		}
	}
	return nil
}

// checkPlugins fails with the list of plugins in none of dirs: go-cni would
// only say so at the first Setup, as an exec error.
func checkPlugins(dirs []string) error {
	var missing []string
	for _, typ := range pluginTypes {
		found := false
		for _, dir := range dirs {
			if fi, err := os.Stat(filepath.Join(dir, typ)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, typ)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s not found in %s: install Debian's containernetworking-plugins (apt-get install containernetworking-plugins, or bash ci/install-deps.sh) or point Config.PluginDirs at the plugins",
			ErrPluginsMissing, strings.Join(missing, ", "), strings.Join(dirs, ", "))
	}
	return nil
}

// confList is the CNI network: a bridge that is the containers' gateway
// and masquerades what they send off the subnet, portmap for the DNAT of
// published ports, and firewall so that a FORWARD policy of DROP (Docker
// sets one) does not cut the containers off.
func confList(cfg Config) ([]byte, error) {
	type obj = map[string]any
	list := obj{
		// 1.0.0 is the newest spec Debian's plugins (1.1.1) speak.
		"cniVersion": "1.0.0",
		"name":       networkName(cfg.Bridge),
		"plugins": []obj{
			{
				"type":      "bridge",
				"bridge":    cfg.Bridge,
				"isGateway": true,
				"ipMasq":    true,
				// A container can reach its own published ports through
				// the node's addresses.
				"hairpinMode": true,
				"ipam": obj{
					"type":    "host-local",
					"ranges":  [][]obj{{{"subnet": cfg.Subnet}}},
					"routes":  []obj{{"dst": "0.0.0.0/0"}},
					"dataDir": filepath.Join(cfg.StateDir, "ipam"),
				},
			},
			{
				"type":         "portmap",
				"capabilities": obj{"portMappings": true},
				// snat (the default, stated here because we rely on it)
				// masquerades connections to 127.0.0.1:HostPort and sets
				// route_localnet on the bridge alone, so that such
				// packets may leave lo for the container.
				"snat": true,
			},
			{"type": "firewall"},
		},
	}
	b, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("cninet: encode CNI config: %w", err)
	}
	return b, nil
}

// networkName names the CNI network after the bridge: plugins derive
// IPAM directories, iptables chain names and cache file names from it.
func networkName(bridge string) string { return "warren-" + bridge }

// containerID is what libcni accepts as a container id; it is also a file
// name in NetnsDir.
var containerID = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,199}$`)

func checkID(id string) error {
	if !containerID.MatchString(id) {
		return fmt.Errorf("%w: container id %q: use 1 to 200 letters, digits, '_', '.' or '-', starting with a letter or digit", ErrInvalid, id)
	}
	return nil
}

func portMappings(ports []Port) ([]gocni.PortMapping, error) {
	pms := make([]gocni.PortMapping, 0, len(ports))
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			return nil, fmt.Errorf("%w: port %d/%s: protocol must be tcp or udp", ErrInvalid, p.HostPort, p.Protocol)
		}
		if p.HostPort < 1 || p.HostPort > 65535 || p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return nil, fmt.Errorf("%w: port mapping %d:%d/%s: ports must be 1 to 65535", ErrInvalid, p.HostPort, p.ContainerPort, proto)
		}
		pms = append(pms, gocni.PortMapping{HostPort: int32(p.HostPort), ContainerPort: int32(p.ContainerPort), Protocol: proto})
	}
	return pms, nil
}

// netnsPath is where the network namespace of container id is mounted.
func (n *Network) netnsPath(id string) string { return filepath.Join(n.cfg.NetnsDir, id) }

// Setup creates a network namespace for container id, attaches it to the
// bridge (creating the bridge if need be) and publishes ports. On error it
// leaves nothing behind.
func (n *Network) Setup(ctx context.Context, id string, ports []Port) (_ Attachment, err error) {
	if err := checkID(id); err != nil {
		return Attachment{}, err
	}
	pms, err := portMappings(ports)
	if err != nil {
		return Attachment{}, err
	}
	// The bridge plugin also enables forwarding (isGateway), but only as
	// a side effect; without it the containers have no outbound access.
	if err := enableForwarding(); err != nil {
		return Attachment{}, err
	}
	if _, ok, err := n.readRecord(id); err != nil {
		return Attachment{}, err
	} else if ok {
		return Attachment{}, fmt.Errorf("%w: %s has a record in %s: call Teardown for %s first", ErrAttached, id, n.recordsDir(), id)
	}
	if err := os.MkdirAll(n.cfg.NetnsDir, 0o755); err != nil {
		return Attachment{}, fmt.Errorf("cninet: create netns directory: %w", err)
	}
	path := n.netnsPath(id)
	if err := createNetns(path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return Attachment{}, fmt.Errorf("%w: %s exists: call Teardown for %s first", ErrAttached, path, id)
		}
		return Attachment{}, err
	}
	if err := n.writeRecord(id, ports); err != nil {
		return Attachment{}, errors.Join(err, removeNetns(path))
	}
	defer func() {
		if err == nil {
			return
		}
		// The caller's ctx may be what failed Setup; undo regardless.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if derr := n.teardown(cctx, id, path, pms); derr != nil {
			err = errors.Join(err, fmt.Errorf("cninet: undo the attachment of %s failed, call Teardown: %w", id, derr))
		}
	}()
	res, err := n.cni.Setup(ctx, id, path, gocni.WithCapabilityPortMap(pms))
	if err != nil {
		return Attachment{}, fmt.Errorf("cninet: attach %s to bridge %s: %w", id, n.cfg.Bridge, err)
	}
	ip, err := resultIP(res)
	if err != nil {
		return Attachment{}, fmt.Errorf("cninet: attach %s to bridge %s: %w", id, n.cfg.Bridge, err)
	}
	return Attachment{NetnsPath: path, IP: ip}, nil
}

func resultIP(res *gocni.Result) (netip.Addr, error) {
	iface, ok := res.Interfaces[ifName]
	if !ok {
		return netip.Addr{}, fmt.Errorf("CNI result has no interface %s", ifName)
	}
	for _, c := range iface.IPConfigs {
		if ip, ok := netip.AddrFromSlice(c.IP); ok && ip.Unmap().Is4() {
			return ip.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("CNI result gives %s no IPv4 address", ifName)
}

// Teardown undoes Setup: CNI DEL releases the IP and removes the DNAT and
// masquerade rules of the ports Setup published, then the netns is
// unmounted and its file removed. Teardown of an id that is not set up
// (any more) returns nil. If DEL fails, the netns is kept so that a later
// Teardown can retry.
func (n *Network) Teardown(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	rec, _, err := n.readRecord(id)
	if err != nil {
		return err
	}
	pms, err := portMappings(rec.ports())
	if err != nil {
		return fmt.Errorf("cninet: record %s: %w", n.recordPath(id), err)
	}
	return n.teardown(ctx, id, n.netnsPath(id), pms)
}

func (n *Network) teardown(ctx context.Context, id, path string, pms []gocni.PortMapping) error {
	nsArg := path
	if ok, err := isNetns(path); err != nil {
		return err
	} else if !ok {
		// CNI lets DEL run without a netns: the plugins then release
		// what lives outside it (the IP, the DNAT rules) and skip the
		// rest. (The bridge plugin finds the address to unmasquerade in
		// the netns: with no netns, the node must have rebooted, which
		// dropped the rules anyway.)
		nsArg = ""
	}
	if err := n.cni.Remove(ctx, id, nsArg, gocni.WithCapabilityPortMap(pms)); err != nil {
		return fmt.Errorf("cninet: detach %s from bridge %s (retry Teardown): %w", id, n.cfg.Bridge, err)
	}
	if err := removeNetns(path); err != nil {
		return err
	}
	// Last: while it exists, Attached lists id, so a sweep retries.
	return n.removeRecord(id)
}

// Attached returns, sorted, the ids that have a netns file or a record
// (a reboot empties NetnsDir, but their IPs stay allocated): after a
// restart, those with no container are to be torn down.
func (n *Network) Attached() ([]string, error) {
	entries, err := os.ReadDir(n.cfg.NetnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cninet: list attached containers: %w", err)
	}
	ids, err := n.recordedIDs()
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Type().IsRegular() && checkID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}
