package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/warren-orchestrator/warren/backends/clock"
	"github.com/warren-orchestrator/warren/backends/pki"
	wraft "github.com/warren-orchestrator/warren/backends/raft"
	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Default addresses of a manager.
const (
	DefaultAPIAddr  = "127.0.0.1:8080"
	DefaultRaftAddr = "127.0.0.1:2377"
)

// Config is how to run a node. Init and Join fill in the identity; Start
// reads it from the data directory.
type Config struct {
	DataDir string
	// APIAddr and RaftAddr are where a new manager serves (init, manager
	// join).
	APIAddr, RaftAddr string
	// NoWorker makes a manager that runs no tasks (init, manager join).
	NoWorker bool
	// Hostname is reported to the cluster; os.Hostname when empty.
	Hostname string
	// Runtime is how a worker runs its tasks: RuntimeContainerd (the
	// default) or RuntimeSimulated. Init and Join record it in node.json;
	// Start uses the recorded one unless this is set.
	Runtime string
	// Containerd is containerd's socket (the containerd package's
	// DefaultAddress when empty); recorded like Runtime.
	Containerd string
	// Bridge and Subnet are the containers' network on this machine
	// (cninet's defaults when empty); recorded like Runtime. Nodes on one
	// machine share a bridge; tests give each suite its own.
	Bridge, Subnet string
	// Heartbeat is how often the node reports (DefaultHeartbeat when 0).
	Heartbeat time.Duration
	// CertValidity is how long node certificates last (90 days when 0);
	// nodes renew theirs once a third of it is left.
	CertValidity time.Duration
	// Timing of raft and Dispatcher liveness; defaults when zero.
	Timing wraft.Timing
	// SnapshotThreshold and SnapshotInterval tune a manager's raft
	// snapshots (raft's defaults, 8192 entries checked every two minutes,
	// when zero); the environment's WARREN_RAFT_SNAPSHOT_THRESHOLD and
	// WARREN_RAFT_SNAPSHOT_INTERVAL (a duration) set them too.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	Dispatcher        dispatcher.Config
	Log               *slog.Logger
	// Ready, when set, is called once the node serves (tests, and the CLI
	// to print what to do next).
	Ready func(*Node)
	// Autolock (init only) keeps the key that protects secrets out of the
	// state: init makes a random unlock key and hands it, once, to
	// UnlockKey (before Ready); a manager that starts later seals and
	// opens no secret until `warren cluster unlock` gives it the key.
	Autolock  bool
	UnlockKey func(key string)

	forceNewCluster bool // set by ForceNewCluster
}

func (c *Config) defaults() {
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.Dispatcher == (dispatcher.Config{}) {
		c.Dispatcher = dispatcher.DefaultConfig
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
	}
	if v := os.Getenv("WARREN_RAFT_SNAPSHOT_THRESHOLD"); c.SnapshotThreshold == 0 && v != "" {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			c.SnapshotThreshold = n
		} else {
			c.Log.Warn("ignoring WARREN_RAFT_SNAPSHOT_THRESHOLD: not a whole number", "value", v)
		}
	}
	if v := os.Getenv("WARREN_RAFT_SNAPSHOT_INTERVAL"); c.SnapshotInterval == 0 && v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			c.SnapshotInterval = d
		} else {
			c.Log.Warn("ignoring WARREN_RAFT_SNAPSHOT_INTERVAL: not a duration such as 5s", "value", v)
		}
	}
}

// Node is a running node.
type Node struct {
	// Identity is the node's identity as it started.
	Identity Identity
	dir      string
	id       *Identity // as it is now: promote and demote change it
	cfg      Config
	creds    *credentials
	rt       orchestrator.Runtime
	wrk      *worker
	// logs serves the task logs of this node, through the manager's API
	// or, on a worker, nodeSrv.
	logs *taskLogs

	mu      sync.Mutex
	mgr     *manager
	nodeSrv *http.Server // a worker's node endpoints
}

// Leader reports whether this node is a manager that leads now.
func (n *Node) Leader() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mgr != nil && n.mgr.node.IsLeader()
}

// Manager reports whether this node runs a manager now.
func (n *Node) Manager() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mgr != nil
}

// managerAddrs fills in the default addresses of a manager.
func (c *Config) managerAddrs() {
	if c.APIAddr == "" {
		c.APIAddr = DefaultAPIAddr
	}
	if c.RaftAddr == "" {
		c.RaftAddr = DefaultRaftAddr
	}
}

// Init creates a new cluster whose first node (a manager, and by default a
// worker too) lives in cfg.DataDir, then runs it until ctx ends.
func Init(ctx context.Context, cfg Config) error {
	cfg.defaults()
	if err := checkRuntime(cfg.Runtime); err != nil {
		return err
	}
	if cfg.Autolock && cfg.UnlockKey == nil {
		return errNoUnlockKeyOut
	}
	cfg.managerAddrs()
	if err := checkAddrs(cfg.APIAddr, cfg.RaftAddr); err != nil {
		return err
	}
	if err := checkFree(cfg.APIAddr, cfg.RaftAddr); err != nil {
		return err
	}
	if err := prepareFresh(cfg.DataDir); err != nil {
		return err
	}
	now := time.Now()
	clusterID, nodeID := api.NewID(), api.NewID()
	ca, err := pki.NewCA(clusterID, now)
	if err != nil {
		return err
	}
	id := &Identity{ClusterID: clusterID, NodeID: nodeID, Manager: true, Worker: !cfg.NoWorker, APIAddr: cfg.APIAddr, RaftAddr: cfg.RaftAddr,
		Runtime: cfg.Runtime, Containerd: cfg.Containerd, Bridge: cfg.Bridge, Subnet: cfg.Subnet}
	if err := ca.Save(pkiDir(cfg.DataDir)); err != nil {
		return err
	}
	cert, err := issueManager(ca, cfg.DataDir, id, cfg.Hostname, cfg.CertValidity, now)
	if err != nil {
		return err
	}
	cluster := &types.Cluster{ID: clusterID, CreatedAt: now, CACert: ca.CertPEM(), CADigest: ca.Digest(), EncryptionSalt: make([]byte, 32)}
	if _, err := rand.Read(cluster.EncryptionSalt); err != nil {
		return err
	}
	if cluster.WorkerToken, err = newToken(ca.Digest()); err != nil {
		return err
	}
	if cluster.ManagerToken, err = newToken(ca.Digest()); err != nil {
		return err
	}
	unlockKey, err := autolock(cfg, cluster)
	if err != nil {
		return err
	}
	self := managerNode(id, cfg.Hostname, now)
	first := func(m *manager) error {
		// The manager that made the unlock key holds it: it is unlocked.
		m.setUnlockKey(unlockKey)
		// node.json goes last: with it, the directory holds a whole node.
		if err := bootstrapAlone(ctx, m, cfg.DataDir, id, &fsm.SetCluster{Cluster: cluster}, &fsm.RegisterNode{Node: self}); err != nil {
			return err
		}
		return showUnlockKey(cfg, unlockKey)
	}
	creds := newCredentials(ca, cert)
	cfg.Log.Info("new cluster", "cluster", clusterID, "node", nodeID, "api", cfg.APIAddr, "raft", cfg.RaftAddr)
	return setUp(ctx, cfg, id, creds, first)
}

// bootstrapAlone makes m a cluster of one, waits until it leads, applies
// cmds and then writes the node's identity.
func bootstrapAlone(ctx context.Context, m *manager, dir string, id *Identity, cmds ...fsm.Command) error {
	if err := m.node.Bootstrap(); err != nil {
		return err
	}
	for !m.node.IsLeader() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	for _, c := range cmds {
		if _, err := m.node.Apply(c); err != nil {
			return err
		}
	}
	return id.save(dir)
}

// ForceNewCluster makes the manager in cfg.DataDir the only manager of its
// cluster, keeping the state: a manager that survived the loss of its
// quorum, or a data directory that Restore prepared. Then it runs the node
// until ctx ends. Other managers must not come back with their old data:
// remove them (warren node rm) and join new ones.
func ForceNewCluster(ctx context.Context, cfg Config) error {
	cfg.defaults()
	if id, err := loadIdentity(cfg.DataDir); err == nil {
		cfg.forceNewCluster = true
		if !id.Manager {
			return fmt.Errorf("daemon: %s is a worker's data directory: --force-new-cluster needs a manager's", cfg.DataDir)
		}
		creds, err := loadCredentials(cfg.DataDir, true)
		if err != nil {
			return err
		}
		cfg.Log.Warn("forcing a new cluster: this manager is now the only one", "node", id.NodeID, "cluster", id.ClusterID)
		return run(ctx, cfg, id, creds, nil)
	}
	cfg.managerAddrs()
	bi, err := loadRestoreMarker(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("%w: %s holds neither a manager nor a restored backup: pass a surviving manager's --data-dir, or run `warren cluster restore --input FILE --data-dir %s` first",
			ErrNotInitialized, cfg.DataDir, cfg.DataDir)
	}
	if err := checkAddrs(cfg.APIAddr, cfg.RaftAddr); err != nil {
		return err
	}
	dir := pkiDir(cfg.DataDir)
	ca, err := pki.LoadCA(dir)
	if err != nil {
		return err
	}
	now := time.Now()
	id := &Identity{ClusterID: bi.ClusterID, NodeID: api.NewID(), Manager: true, Worker: !cfg.NoWorker, APIAddr: cfg.APIAddr, RaftAddr: cfg.RaftAddr,
		Runtime: cfg.Runtime, Containerd: cfg.Containerd, Bridge: cfg.Bridge, Subnet: cfg.Subnet}
	cert, err := issueManager(ca, cfg.DataDir, id, cfg.Hostname, cfg.CertValidity, now)
	if err != nil {
		return err
	}
	self := managerNode(id, cfg.Hostname, now)
	first := func(m *manager) error {
		if err := bootstrapAlone(ctx, m, cfg.DataDir, id, &fsm.RegisterNode{Node: self}); err != nil {
			return err
		}
		return os.Remove(filepath.Join(cfg.DataDir, restoreMarker))
	}
	cfg.Log.Warn("restored cluster starts with this manager alone", "cluster", bi.ClusterID, "node", id.NodeID, "backup_index", bi.AppliedIndex)
	return run(ctx, cfg, id, newCredentials(ca, cert), first)
}

// issueManager issues a manager's certificate and, for the local
// administrator, an admin certificate, and saves both.
func issueManager(ca *pki.CA, dataDir string, id *Identity, hostname string, validity time.Duration, now time.Time) (*pki.Cert, error) {
	cert, err := ca.Issue(pki.Request{CommonName: id.NodeID, Role: pki.RoleManager, IPs: certIPs(id.APIAddr, id.RaftAddr), ValidFor: validity}, now)
	if err != nil {
		return nil, err
	}
	admin, err := ca.Issue(pki.Request{CommonName: "admin@" + hostname, Role: pki.RoleAdmin, ValidFor: pki.CAValidFor}, now)
	if err != nil {
		return nil, err
	}
	if err := saveNodeCert(dataDir, cert); err != nil {
		return nil, err
	}
	if err := admin.Save(pkiDir(dataDir), AdminCertName); err != nil {
		return nil, err
	}
	return cert, nil
}

// managerNode is the record a new manager registers itself with.
func managerNode(id *Identity, hostname string, now time.Time) *types.Node {
	return &types.Node{
		ID: id.NodeID, Role: types.RoleManager, Address: id.APIAddr, Hostname: hostname,
		Status: types.NodeUnknown, Availability: availability(id), CreatedAt: now,
	}
}

func availability(id *Identity) types.NodeAvailability {
	if id.Worker {
		return types.NodeActive
	}
	// A manager that runs no tasks is drained, so nothing is placed on it.
	return types.NodeDrain
}

// Join makes cfg.DataDir a new node of the cluster at managerAddr, then runs
// it until ctx ends.
func Join(ctx context.Context, cfg Config, managerAddr, token string, asManager bool) error {
	cfg.defaults()
	if err := checkRuntime(cfg.Runtime); err != nil {
		return err
	}
	digest, err := tokenDigest(token)
	if err != nil {
		return err
	}
	addr := localAddrTo(managerAddr)
	if asManager {
		cfg.managerAddrs()
	} else if addr != "" {
		// Where the worker serves if it is ever promoted.
		if cfg.APIAddr == "" {
			cfg.APIAddr = net.JoinHostPort(addr, "8080")
		}
		if cfg.RaftAddr == "" {
			cfg.RaftAddr = net.JoinHostPort(addr, "2377")
		}
	}
	if asManager || cfg.APIAddr != "" {
		if err := checkAddrs(cfg.APIAddr, cfg.RaftAddr); err != nil {
			return err
		}
	}
	if asManager {
		if err := checkFree(cfg.APIAddr, cfg.RaftAddr); err != nil {
			return err
		}
	}
	if err := prepareFresh(cfg.DataDir); err != nil {
		return err
	}
	// A worker gives its API address too: the managers read its task
	// logs there.
	req := &api.JoinRequest{Token: token, Role: api.RoleWorker, Hostname: cfg.Hostname, Addr: addr, APIAddr: cfg.APIAddr}
	if asManager {
		req.Role, req.APIAddr, req.RaftAddr = api.RoleManager, cfg.APIAddr, cfg.RaftAddr
	}
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	resp, err := api.Join(jctx, managerAddr, pki.PinnedClientConfig(digest), req)
	cancel()
	if err != nil {
		return fmt.Errorf("daemon: join the cluster at %s: %w", managerAddr, err)
	}
	ca, err := pki.ParseCA(resp.CACert, resp.CAKey)
	if err != nil {
		return err
	}
	if ca.Digest() != digest {
		return fmt.Errorf("%w: the manager sent a CA other than the token's (%s): check the token", ErrBadToken, digest)
	}
	cert, err := pki.ParseCert(resp.Cert, resp.Key)
	if err != nil {
		return err
	}
	dir := pkiDir(cfg.DataDir)
	if asManager {
		err = ca.Save(dir)
	} else {
		err = ca.SaveCert(dir)
	}
	if err == nil {
		err = saveNodeCert(cfg.DataDir, cert)
	}
	if err != nil {
		return err
	}
	id := &Identity{ClusterID: resp.ClusterID, NodeID: resp.NodeID, Manager: asManager, Worker: !asManager || !cfg.NoWorker,
		APIAddr: cfg.APIAddr, RaftAddr: cfg.RaftAddr, Runtime: cfg.Runtime, Containerd: cfg.Containerd, Bridge: cfg.Bridge, Subnet: cfg.Subnet}
	for _, m := range resp.Managers {
		id.Managers = append(id.Managers, m.APIAddr)
	}
	if len(id.Managers) == 0 {
		id.Managers = []string{managerAddr}
	}
	creds := newCredentials(ca, cert)
	var first func(*manager) error
	if asManager {
		first = func(m *manager) error {
			client, err := newClient(id.Managers, creds)
			if err != nil {
				return err
			}
			if err := client.AddManager(ctx, &api.AddManagerRequest{NodeID: id.NodeID, RaftAddr: id.RaftAddr}); err != nil {
				return fmt.Errorf("daemon: become a raft voter: %w", err)
			}
			return id.save(cfg.DataDir)
		}
	} else if err := id.save(cfg.DataDir); err != nil {
		return err
	}
	cfg.Log.Info("joined the cluster", "cluster", id.ClusterID, "node", id.NodeID, "manager", asManager)
	return setUp(ctx, cfg, id, creds, first)
}

// Start runs the node whose data directory is cfg.DataDir until ctx ends.
func Start(ctx context.Context, cfg Config) error {
	cfg.defaults()
	if err := checkRuntime(cfg.Runtime); err != nil {
		return err
	}
	id, err := loadIdentity(cfg.DataDir)
	if err != nil {
		return err
	}
	creds, err := loadCredentials(cfg.DataDir, id.Manager)
	if err != nil {
		return err
	}
	return run(ctx, cfg, id, creds, nil)
}

// setUp runs a node that init or join is creating. If it fails before its
// identity is written, the files it wrote go: the directory held none of
// them before (checkFresh), and without them the same command can simply
// be run again.
func setUp(ctx context.Context, cfg Config, id *Identity, creds *credentials, first func(*manager) error) error {
	err := run(ctx, cfg, id, creds, first)
	if _, statErr := os.Stat(filepath.Join(cfg.DataDir, IdentityFile)); err != nil && errors.Is(statErr, os.ErrNotExist) {
		for _, name := range nodeFiles {
			_ = os.RemoveAll(filepath.Join(cfg.DataDir, name))
		}
	}
	return err
}

// checkFree refuses addresses another process listens on, before anything
// is written.
func checkFree(addrs ...string) error {
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("daemon: %s is not free (%w): another warren, or another program, listens there; pick another --api-addr or --advertise-addr", a, err)
		}
		_ = l.Close()
	}
	return nil
}

// run serves a node: its manager (with first run once raft is up, for
// init and join) and its worker, until ctx ends or the node is removed.
func run(ctx context.Context, cfg Config, id *Identity, creds *credentials, first func(*manager) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := &Node{Identity: *id, dir: cfg.DataDir, id: id, cfg: cfg, creds: creds, logs: newTaskLogs(id.NodeID)}
	defer n.stopManager()
	defer n.stopNodeServer()
	defer n.closeRuntime()
	if id.Worker {
		// Before anything serves: a worker that cannot run containers
		// says so at once.
		if _, err := n.tasksRuntime(); err != nil {
			return err
		}
	}
	if id.Manager {
		if err := n.startManager(ctx, first); err != nil {
			return err
		}
	} else {
		n.startNodeServer()
	}
	client, err := newClient(n.managers(), creds)
	if err != nil {
		return err
	}
	n.wrk = newWorker(cfg.DataDir, id, client, n.rt, cfg.Heartbeat, cfg.Log.With("part", "worker"))
	n.wrk.roles = n
	if cfg.Ready != nil {
		cfg.Ready(n)
	}
	err = n.wrk.run(ctx)
	if errors.Is(err, api.ErrRemoved) {
		return fmt.Errorf("daemon: %w", err)
	}
	return err
}

// managers are the API addresses the worker half talks to: a manager's
// own first, like any other client of it.
func (n *Node) managers() []string {
	if n.id.Manager {
		return append([]string{n.id.APIAddr}, n.id.Managers...)
	}
	return n.id.Managers
}

func (n *Node) startManager(ctx context.Context, first func(*manager) error) error {
	m, err := openManager(ctx, n.dir, n.id, n.creds, managerConfig{
		Timing: n.cfg.Timing, Dispatcher: n.cfg.Dispatcher, Log: n.cfg.Log, ForceNewCluster: n.cfg.forceNewCluster,
		CertValidity: n.cfg.CertValidity, Local: n.logs,
		SnapshotThreshold: n.cfg.SnapshotThreshold, SnapshotInterval: n.cfg.SnapshotInterval,
	})
	if err != nil {
		return err
	}
	err = m.serve()
	if err == nil && first != nil {
		err = first(m)
	}
	if err != nil {
		_ = m.close()
		return err
	}
	m.warnIfLocked()
	n.mu.Lock()
	n.mgr = m
	n.mu.Unlock()
	return nil
}

func (n *Node) stopManager() {
	n.mu.Lock()
	m := n.mgr
	n.mgr = nil
	n.mu.Unlock()
	if m != nil {
		if err := m.close(); err != nil {
			n.cfg.Log.Warn("closing raft", "err", err)
		}
	}
}

// credentialsFor asks the leader for this node's certificate in its new
// role and keeps it (with the CA key for a manager, without for a worker).
func (n *Node) credentialsFor(ctx context.Context, client *api.Client, role string) error {
	resp, err := client.Certificate(ctx, n.id.NodeID)
	if err != nil {
		return err
	}
	ca, err := pki.ParseCA(resp.CACert, resp.CAKey)
	if err != nil {
		return err
	}
	cert, err := pki.ParseCert(resp.Cert, resp.Key)
	if err != nil {
		return err
	}
	if cert.Role() != role {
		return fmt.Errorf("daemon: the leader issued a %q certificate, not %q: the role changed again; the next heartbeat retries", cert.Role(), role)
	}
	dir := pkiDir(n.dir)
	if role == api.RoleManager {
		err = ca.Save(dir)
	} else {
		err = os.Remove(filepath.Join(dir, pki.CAKeyFile))
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	}
	if err == nil {
		err = saveNodeCert(n.dir, cert)
	}
	if err != nil {
		return err
	}
	if n.creds.current().Role() != role {
		// A new role: the manager half is not running (promotion) or no
		// longer (demotion), so nothing reads the CA while it changes to
		// the one with or without its key. A renewal keeps the CA.
		n.creds.ca = ca
	}
	n.creds.cert.Store(cert)
	return nil
}

// renew replaces the node's certificate once a third of its validity is
// left, as the heartbeat finds it: TLS configs read the new one on their
// next handshake.
func (n *Node) renew(ctx context.Context, client *api.Client, now time.Time) error {
	cur := n.creds.current()
	if !cur.NeedsRenewal(now) {
		return nil
	}
	if err := n.credentialsFor(ctx, client, cur.Role()); err != nil {
		return fmt.Errorf("daemon: renew the node certificate (valid until %s): %w", cur.Leaf.NotAfter.Format(time.RFC3339), err)
	}
	n.cfg.Log.Info("node certificate renewed", "until", n.creds.current().Leaf.NotAfter.Format(time.RFC3339))
	return nil
}

// promote starts this node's manager half: `warren node promote` made it
// a manager in the state.
func (n *Node) promote(ctx context.Context, client *api.Client) (*api.Client, error) {
	if err := checkAddrs(n.id.APIAddr, n.id.RaftAddr); err != nil {
		return nil, fmt.Errorf("%w: this node cannot serve as a manager: join it with --api-addr and --advertise-addr", err)
	}
	if err := n.credentialsFor(ctx, client, api.RoleManager); err != nil {
		return nil, err
	}
	n.id.Manager = true
	// The manager's API serves the node endpoints too, on the same
	// address: the worker's server goes first.
	n.stopNodeServer()
	err := n.startManager(ctx, func(m *manager) error {
		c, err := newClient(n.id.Managers, n.creds)
		if err != nil {
			return err
		}
		return c.AddManager(ctx, &api.AddManagerRequest{NodeID: n.id.NodeID, RaftAddr: n.id.RaftAddr, APIAddr: n.id.APIAddr})
	})
	if err != nil {
		n.id.Manager = false
		n.startNodeServer()
		return nil, fmt.Errorf("daemon: promotion: %w", err)
	}
	if err := n.id.save(n.dir); err != nil {
		return nil, err
	}
	n.cfg.Log.Info("promoted: this node is a manager now", "api", n.id.APIAddr, "raft", n.id.RaftAddr)
	return newClient(n.managers(), n.creds)
}

// demote stops this node's manager half: the leader took it out of raft.
// A worker keeps no replicated state, so the manager's files go.
func (n *Node) demote(ctx context.Context, client *api.Client) (*api.Client, error) {
	n.stopManager()
	if err := n.credentialsFor(ctx, client, api.RoleWorker); err != nil {
		return nil, err
	}
	for _, name := range append([]string{"snapshots"}, managerFiles...) {
		if err := os.RemoveAll(filepath.Join(n.dir, name)); err != nil {
			return nil, fmt.Errorf("daemon: demotion: %w", err)
		}
	}
	n.id.Manager, n.id.Worker = false, true
	if err := n.id.save(n.dir); err != nil {
		return nil, err
	}
	// The manager's API is closed: the node endpoints move to a server
	// of their own, on the same address.
	n.startNodeServer()
	n.cfg.Log.Info("demoted: this node is a worker now")
	return newClient(n.managers(), n.creds)
}

func newClient(managers []string, creds *credentials) (*api.Client, error) {
	return api.NewClient(api.ClientConfig{
		Managers: managers,
		TLS:      pki.ClientConfig(creds.ca.Pool(), nil, pki.Current(creds.current)),
		Wait:     clock.Wall{}.Wait,
	})
}

// checkAddrs refuses manager addresses that cannot work before anything
// is written.
func checkAddrs(apiAddr, raftAddr string) error {
	for _, a := range []struct{ flag, addr string }{{"--api-addr", apiAddr}, {"--advertise-addr", raftAddr}} {
		host, port, err := net.SplitHostPort(a.addr)
		if err != nil || port == "" || port == "0" {
			return fmt.Errorf("daemon: %s %q is not a host:port with a fixed port, such as 10.0.0.5:2377", a.flag, a.addr)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return fmt.Errorf("daemon: %s %q: other nodes cannot dial %s; give this machine's IP address", a.flag, a.addr, host)
		}
	}
	if apiAddr == raftAddr {
		return fmt.Errorf("daemon: --api-addr and --advertise-addr are both %s: give each its own port", apiAddr)
	}
	return nil
}

// localAddrTo is the local IP this machine reaches addr from: the address
// other nodes can reach a joining worker at.
func localAddrTo(addr string) string {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return ""
	}
	defer func() { _ = c.Close() }()
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return a.IP.String()
	}
	return ""
}
