package daemon

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warren-orchestrator/warren/backends/clock"
	"github.com/warren-orchestrator/warren/backends/pki"
	wraft "github.com/warren-orchestrator/warren/backends/raft"
	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/secrets"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// errNotLeading is a leader-only request on a manager whose leader duties
// have not started (it just won an election) or just stopped.
var errNotLeading = fmt.Errorf("%w: this manager is between leadership terms: retry in a moment", api.ErrNoLeader)

// probeTimeout bounds the health probe of each manager by cluster info.
const probeTimeout = time.Second

// manager is the control-plane half of a node: raft, the API server, the
// leader loop and the event stream. It implements api.Backend.
type manager struct {
	id     *Identity
	creds  *credentials
	node   *wraft.Node
	loop   *loop
	events *events
	clock  orchestrator.Clock
	log    *slog.Logger
	probe  *http.Client // to other managers' /v1/health

	srv *http.Server
	// local is this node's own task logs; nodes calls the other nodes'
	// (with this manager's certificate); wait paces the relay's retries.
	local api.NodeBackend
	nodes *api.Client
	wait  func(context.Context, time.Duration) error
	// certValidity is how long the certificates this manager issues last
	// (pki.LeafValidFor when 0).
	certValidity time.Duration
	// mu makes a token rotation's read and write of the cluster record
	// one step on this leader; secrets are sealed, and their writes
	// checked, under it too (secretkeys.go).
	mu sync.Mutex
	// keys is the secrets keyring opened from the wrapped data keys keysOf
	// (cachedKeyring). unlockKey is an autolocked cluster's KEK, held in
	// memory only, nil until `warren cluster unlock` (or init) gives it.
	keysMu    sync.Mutex
	keys      *secrets.Keyring
	keysOf    []byte
	unlockKey []byte
}

var _ api.Backend = (*manager)(nil)

// managerConfig is what starting a manager needs beyond its identity.
type managerConfig struct {
	Timing            wraft.Timing
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	Dispatcher        dispatcher.Config
	Log               *slog.Logger
	ForceNewCluster   bool
	CertValidity      time.Duration
	// Local serves this node's task logs.
	Local api.NodeBackend
}

// openManager starts raft and the leader loop; serve starts the API.
func openManager(ctx context.Context, dir string, id *Identity, creds *credentials, cfg managerConfig) (*manager, error) {
	m := &manager{id: id, creds: creds, clock: clock.Wall{}, log: cfg.Log, events: newEvents(), certValidity: cfg.CertValidity,
		local: cfg.Local, wait: clock.Wall{}.Wait}
	// Every call of nodes names the node it goes to; the address given
	// here is only what the client requires to be made.
	nodes, err := newClient([]string{id.APIAddr}, creds)
	if err != nil {
		return nil, err
	}
	m.nodes = nodes
	pool := creds.ca.Pool()
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	m.loop = newLoop(nil, m.clock, cfg.Dispatcher, cfg.Log.With("part", "leader"), binary.LittleEndian.Uint64(seed[:]))
	node, err := wraft.Open(wraft.Config{
		ID:                id.NodeID,
		DataDir:           dir,
		Bind:              id.RaftAddr,
		ServerTLS:         pki.ServerConfig(pool, nil, pki.Current(creds.current), pki.RequireRole(pki.RoleManager)),
		ClientTLS:         pki.ClientConfig(pool, nil, pki.Current(creds.current), pki.RequireRole(pki.RoleManager)),
		Timing:            cfg.Timing,
		SnapshotThreshold: cfg.SnapshotThreshold,
		SnapshotInterval:  cfg.SnapshotInterval,
		LogOutput:         slogWriter{cfg.Log.With("part", "raft")},
		ForceNewCluster:   cfg.ForceNewCluster,
		OnApply: func(index uint64, c fsm.Command) {
			m.loop.onApply(index, c)
			m.events.publish(index, c)
		},
	})
	if err != nil {
		return nil, err
	}
	m.node = node
	m.loop.node = node
	m.probe = &http.Client{
		Timeout:   probeTimeout,
		Transport: &http.Transport{TLSClientConfig: pki.ClientConfig(pool, nil, pki.Current(creds.current), pki.RequireRole(pki.RoleManager))},
	}
	go m.loop.run(ctx)
	return m, nil
}

// serve starts the API on the manager's API address, with the node
// endpoints of this node.
func (m *manager) serve() error {
	h := api.NewHandler(api.HandlerConfig{
		Backend: apiBackend{m}, Clock: m.clock, Log: m.log.With("part", "api"), RoleOf: roleOf, Node: m.local,
	})
	srv, err := startServer(m.id.APIAddr, serverTLS(m.creds, pki.AllowNoClientCert(), pki.PresentCA(m.creds.ca.Cert)), h, m.log)
	if err != nil {
		return errAPIAddr(m.id.APIAddr, err)
	}
	m.srv = srv
	return nil
}

// close stops the API, then raft.
func (m *manager) close() error {
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = m.srv.Shutdown(ctx)
		cancel()
		_ = m.srv.Close()
	}
	m.nodes.Close()
	return m.node.Close()
}

// leaderInfo is the leader as a client must reach it, nil when unknown.
func (m *manager) leaderInfo() *api.Manager {
	id, addr := m.node.Leader()
	if id == "" {
		return nil
	}
	out := &api.Manager{ID: id, RaftAddr: addr, Leader: true, Voter: true}
	if n, err := m.node.Store().GetNode(id); err == nil {
		out.APIAddr = n.Address
	}
	if out.APIAddr == "" {
		return nil // not registered yet: as good as unknown to a client
	}
	return out
}

// notLeader is the error for a leader-only request on a follower.
func (m *manager) notLeader() error {
	if l := m.leaderInfo(); l != nil && l.ID != m.id.NodeID {
		return &api.NotLeaderError{Leader: *l}
	}
	return fmt.Errorf("%w: no leader is known: an election may be under way, or too few managers are up", api.ErrNoLeader)
}

// raftError turns the raft wiring's errors into the API's.
func (m *manager) raftError(err error) error {
	switch {
	case errors.Is(err, wraft.ErrNotLeader):
		return m.notLeader()
	case errors.Is(err, wraft.ErrNoQuorum):
		return fmt.Errorf("%w: %v", api.ErrNoQuorum, err)
	case errors.Is(err, wraft.ErrOutcomeUnknown):
		return fmt.Errorf("%w: %v", api.ErrOutcomeUnknown, err)
	}
	return err
}

// Apply implements api.Backend.
func (m *manager) Apply(_ context.Context, cmd fsm.Command) error {
	if !m.node.IsLeader() {
		return m.notLeader()
	}
	_, err := m.node.Apply(cmd)
	return m.raftError(err)
}

// Read implements api.Backend: a linearizable read waits on a barrier, a
// log entry of its own, so it sees every write committed before it and
// proves this manager still leads.
func (m *manager) Read(_ context.Context, stale bool, fn func(state.Reader) error) error {
	if !stale {
		if !m.node.IsLeader() {
			return m.notLeader()
		}
		if err := m.node.Barrier(); err != nil {
			return m.raftError(err)
		}
	}
	return m.node.Store().View(fn)
}

// Health implements api.Backend.
func (m *manager) Health() api.Health {
	return api.Health{ID: m.id.NodeID, Leader: m.node.IsLeader(), Applied: m.node.Applied()}
}

// Cluster implements api.Backend, from this manager's state (it may lag)
// and a health probe of each manager.
func (m *manager) Cluster(ctx context.Context) (*api.ClusterInfo, error) {
	c, err := m.node.Store().GetCluster()
	if err != nil {
		return nil, err
	}
	members, err := m.node.Members()
	if err != nil {
		return nil, err
	}
	leaderID, _ := m.node.Leader()
	info := &api.ClusterInfo{
		ID: c.ID, CreatedAt: c.CreatedAt, CADigest: c.CADigest,
		Leader: leaderID, Term: m.node.Term(), AnsweredBy: m.id.NodeID, Applied: m.node.Applied(),
	}
	info.Managers = make([]api.Manager, len(members))
	var wg sync.WaitGroup
	for i, mem := range members {
		out := &info.Managers[i]
		*out = api.Manager{ID: mem.ID, RaftAddr: mem.Addr, Voter: mem.Voter, Leader: mem.ID == leaderID}
		if n, err := m.node.Store().GetNode(mem.ID); err == nil {
			out.APIAddr = n.Address
		}
		if mem.ID == m.id.NodeID {
			out.Reachable = true
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out.Reachable, out.Error = m.probeHealth(ctx, out.APIAddr)
		}()
	}
	wg.Wait()
	return info, nil
}

func (m *manager) probeHealth(ctx context.Context, addr string) (bool, string) {
	if addr == "" {
		return false, "no API address registered"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+api.Prefix+"/health", nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := m.probe.Do(req)
	if err != nil {
		return false, err.Error()
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, resp.Status
	}
	return true, ""
}

// managerList is every manager's API address, from the state, but for the
// nodes named in except (a joining manager is not told about itself: it
// would ask itself to be added, and be refused).
func (m *manager) managerList(except ...string) []api.Manager {
	nodes, err := m.node.Store().ListNodes()
	if err != nil {
		return nil
	}
	leaderID, _ := m.node.Leader()
	var out []api.Manager
	for _, n := range nodes {
		if n.Role == types.RoleManager && n.Address != "" && !slices.Contains(except, n.ID) {
			out = append(out, api.Manager{ID: n.ID, APIAddr: n.Address, Voter: true, Leader: n.ID == leaderID})
		}
	}
	return out
}

// Join implements api.Backend.
func (m *manager) Join(ctx context.Context, req *api.JoinRequest) (*api.JoinResponse, error) {
	if !m.node.IsLeader() {
		return nil, m.notLeader()
	}
	c, err := m.node.Store().GetCluster()
	if err != nil {
		return nil, err
	}
	var role types.NodeRole
	switch {
	case sameToken(req.Token, c.WorkerToken):
		role = types.RoleWorker
	case sameToken(req.Token, c.ManagerToken):
		role = types.RoleManager
	default:
		return nil, fmt.Errorf("%w: the join token is not this cluster's current token (it may have been rotated): get the current one with `warren cluster join-token worker` (or manager) on a manager",
			api.ErrUnauthorized)
	}
	if req.Role != string(role) {
		return nil, fmt.Errorf("%w: this is the %s join token, but the node asked to join as a %s: use `warren %s join` with this token, or get the %s token",
			api.ErrForbidden, role, req.Role, role, req.Role)
	}
	if role == types.RoleManager && (req.APIAddr == "" || req.RaftAddr == "") {
		return nil, fmt.Errorf("%w: a joining manager must give its API and raft addresses", api.ErrBadRequest)
	}
	nodeID := api.NewID()
	addr := req.Addr
	if role == types.RoleManager || req.APIAddr != "" {
		// Where the node serves: the managers read a worker's task logs
		// there, and it is where it serves the API once promoted.
		addr = req.APIAddr
	}
	cert, err := m.creds.ca.Issue(pki.Request{
		CommonName: nodeID, Role: string(role), IPs: certIPs(req.Addr, req.APIAddr, req.RaftAddr), ValidFor: m.certValidity,
	}, m.clock.Now())
	if err != nil {
		return nil, err
	}
	node := &types.Node{
		ID: nodeID, Role: role, Address: addr, Hostname: req.Hostname,
		Status: types.NodeUnknown, Availability: types.NodeActive, CreatedAt: m.clock.Now(),
	}
	if err := m.Apply(ctx, &fsm.RegisterNode{Node: node}); err != nil {
		return nil, err
	}
	resp := &api.JoinResponse{NodeID: nodeID, ClusterID: c.ID, CACert: m.creds.ca.CertPEM(), Managers: m.managerList(nodeID)}
	if resp.Cert, resp.Key, err = cert.PEM(); err != nil {
		return nil, err
	}
	if role == types.RoleManager {
		if resp.CAKey, err = m.creds.ca.KeyPEM(); err != nil {
			return nil, err
		}
	}
	m.log.Info("node joined", "node", nodeID, "role", role, "hostname", req.Hostname, "addr", addr)
	return resp, nil
}

// AddManager implements api.Backend.
func (m *manager) AddManager(ctx context.Context, req *api.AddManagerRequest) error {
	if !m.node.IsLeader() {
		return m.notLeader()
	}
	n, err := m.node.Store().GetNode(req.NodeID)
	if err != nil {
		return fmt.Errorf("%w: node %s is not registered: join first", api.ErrRemoved, req.NodeID)
	}
	if n.Role != types.RoleManager {
		return fmt.Errorf("%w: node %s is a worker: join with the manager token to become a manager", api.ErrForbidden, req.NodeID)
	}
	if err := m.node.AddVoter(req.NodeID, req.RaftAddr); err != nil {
		return m.raftError(err)
	}
	if req.APIAddr != "" && req.APIAddr != n.Address {
		// A promoted worker: clients reach it at its API address now.
		n.Address = req.APIAddr
		if err := m.Apply(ctx, &fsm.UpdateNode{Node: n}); err != nil {
			return err
		}
	}
	m.log.Info("manager added to raft", "node", req.NodeID, "raft_addr", req.RaftAddr)
	return nil
}

// clusterAfterBarrier reads the cluster record as of every write
// committed before this call (a leader's read: what the previous leader
// did is seen).
func (m *manager) clusterAfterBarrier(ctx context.Context) (*types.Cluster, error) {
	var c *types.Cluster
	err := m.Read(ctx, false, func(r state.Reader) error {
		var err error
		c, err = r.GetCluster()
		return err
	})
	return c, err
}

// JoinToken implements api.Backend.
func (m *manager) JoinToken(ctx context.Context, role string, rotate bool) (string, error) {
	if !m.node.IsLeader() {
		return "", m.notLeader()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Read after a barrier: a token rotated by the previous leader must
	// not come back.
	c, err := m.clusterAfterBarrier(ctx)
	if err != nil {
		return "", err
	}
	field := &c.WorkerToken
	if role == api.RoleManager {
		field = &c.ManagerToken
	}
	if rotate {
		t, err := newToken(c.CADigest)
		if err != nil {
			return "", err
		}
		*field = t
		if err := m.Apply(ctx, &fsm.SetCluster{Cluster: c}); err != nil {
			return "", err
		}
		m.log.Info("join token rotated", "role", role)
	}
	return *field, nil
}

// Heartbeat implements api.Backend.
func (m *manager) Heartbeat(ctx context.Context, nodeID string, req *api.HeartbeatRequest) (*api.HeartbeatResponse, error) {
	if !m.node.IsLeader() {
		return nil, m.notLeader()
	}
	node, err := m.member(nodeID)
	if err != nil {
		return nil, err
	}
	// The reports are proposed by the leader; bound the wait so that a
	// lost quorum answers instead of holding the worker's request.
	hctx, cancel := context.WithTimeout(ctx, wraft.DefaultTiming.Apply)
	defer cancel()
	as, sent, err := m.loop.heartbeat(hctx, nodeID, req.Statuses)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return nil, fmt.Errorf("%w: the task reports were not committed in %s", api.ErrNoQuorum, wraft.DefaultTiming.Apply)
	}
	if err != nil {
		return nil, err
	}
	if as, err = m.withSecrets(ctx, as); err != nil {
		return nil, err
	}
	return &api.HeartbeatResponse{Role: string(node.Role), Assignments: as, Committed: sent, Managers: m.managerList()}, nil
}

// member is a node of the cluster, or ErrRemoved.
func (m *manager) member(id string) (*types.Node, error) {
	n, err := m.node.Store().GetNode(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, fmt.Errorf("%w: node %s is not a member: it was removed; wipe its data directory and join again with a token", api.ErrRemoved, id)
	}
	return n, err
}

// SetRole implements api.Backend.
func (m *manager) SetRole(ctx context.Context, id, role string) error {
	if !m.node.IsLeader() {
		return m.notLeader()
	}
	n, err := m.node.Store().GetNode(id)
	if err != nil {
		return err
	}
	if string(n.Role) == role {
		return fmt.Errorf("%w: node %s is a %s already", fsm.ErrConflict, id, role)
	}
	if role == api.RoleWorker {
		members, err := m.node.Members()
		if err != nil {
			return err
		}
		voters := 0
		in := false
		for _, mem := range members {
			if mem.Voter {
				voters++
			}
			in = in || mem.ID == id
		}
		if in && voters == 1 {
			return fmt.Errorf("%w: node %s is the cluster's only manager: promote another node first", fsm.ErrInUse, id)
		}
		if id == m.id.NodeID {
			// The leader cannot remove itself and go on answering: it
			// hands the lead over, and the client's retry reaches the
			// new leader, which demotes this node.
			if err := m.node.TransferLeadership(); err != nil {
				return m.raftError(err)
			}
			return fmt.Errorf("%w: node %s led; the lead has moved to another manager, which will demote it", api.ErrNoLeader, id)
		}
		if in {
			if err := m.node.RemoveServer(id); err != nil {
				return m.raftError(err)
			}
		}
	}
	n.Role = types.NodeRole(role)
	if err := m.Apply(ctx, &fsm.UpdateNode{Node: n}); err != nil {
		return err
	}
	m.log.Info("node role changed", "node", id, "role", role)
	return nil
}

// Certificate implements api.Backend.
func (m *manager) Certificate(_ context.Context, nodeID string) (*api.JoinResponse, error) {
	if !m.node.IsLeader() {
		return nil, m.notLeader()
	}
	n, err := m.member(nodeID)
	if err != nil {
		return nil, err
	}
	c, err := m.node.Store().GetCluster()
	if err != nil {
		return nil, err
	}
	cert, err := m.creds.ca.Issue(pki.Request{CommonName: nodeID, Role: string(n.Role), IPs: certIPs(n.Address), ValidFor: m.certValidity}, m.clock.Now())
	if err != nil {
		return nil, err
	}
	resp := &api.JoinResponse{NodeID: nodeID, ClusterID: c.ID, CACert: m.creds.ca.CertPEM(), Managers: m.managerList()}
	if resp.Cert, resp.Key, err = cert.PEM(); err != nil {
		return nil, err
	}
	if n.Role == types.RoleManager {
		if resp.CAKey, err = m.creds.ca.KeyPEM(); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// RemoveNode implements api.Backend.
func (m *manager) RemoveNode(ctx context.Context, id string, force bool) error {
	if !m.node.IsLeader() {
		return m.notLeader()
	}
	n, err := m.node.Store().GetNode(id)
	if err != nil {
		return err
	}
	if n.Status == types.NodeReady && !force {
		return fmt.Errorf("%w: node %s (%s) is up: stop it first, or pass --force to remove it anyway", fsm.ErrInUse, id, n.Hostname)
	}
	if n.Role == types.RoleManager {
		if id == m.id.NodeID {
			return fmt.Errorf("%w: node %s is the leader serving this request: remove it through another manager once it stops leading", fsm.ErrInUse, id)
		}
		members, err := m.node.Members()
		if err != nil {
			return err
		}
		if slices.ContainsFunc(members, func(mem wraft.Member) bool { return mem.ID == id }) {
			if err := m.node.RemoveServer(id); err != nil {
				return m.raftError(err)
			}
		}
	}
	return m.Apply(ctx, &fsm.DeleteNode{ID: id})
}

// Events implements api.Backend.
func (m *manager) Events(ctx context.Context, fn func(api.Event) error) error {
	return m.events.watch(ctx, fn)
}

// Backup implements api.Backend: after a barrier, so the copy holds every
// write acknowledged before the request.
func (m *manager) Backup(_ context.Context, w io.Writer) (uint64, error) {
	if !m.node.IsLeader() {
		return 0, m.notLeader()
	}
	if err := m.node.Barrier(); err != nil {
		return 0, m.raftError(err)
	}
	return m.node.Backup(w)
}

// slogWriter turns raft's log lines into records at their own level, so
// that raft's warnings and errors (a peer unreachable, an election lost)
// show at the default level and its routine lines only at debug.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := string(trimNewline(p))
	level := slog.LevelDebug
	switch {
	case strings.Contains(line, "[ERROR]"):
		level = slog.LevelError
	case strings.Contains(line, "[WARN]"):
		level = slog.LevelWarn
	}
	w.l.Log(context.Background(), level, line)
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
