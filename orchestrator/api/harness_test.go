package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

// testCA is a throwaway cluster CA. backends/pki is not used: the API
// package must not depend on a backend, and its tests stay with it.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

var serial atomic.Int64

func newTestCA() *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: "warren-test-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	Expect(err).NotTo(HaveOccurred())
	cert, err := x509.ParseCertificate(der)
	Expect(err).NotTo(HaveOccurred())
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a certificate for cn with role in its OU, good for both
// server and client use, for 127.0.0.1.
func (ca *testCA) issue(cn, role string) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn, OrganizationalUnit: []string{role}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	Expect(err).NotTo(HaveOccurred())
	leaf, err := x509.ParseCertificate(der)
	Expect(err).NotTo(HaveOccurred())
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// clientTLS trusts the CA and presents cert (none when nil).
func (ca *testCA) clientTLS(cert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// roleOf reads the role from the OU, as the PKI writes it.
func roleOf(c *x509.Certificate) string {
	for _, ou := range c.Subject.OrganizationalUnit {
		if ou == api.RoleAdmin || ou == api.RoleManager || ou == api.RoleWorker {
			return ou
		}
	}
	return ""
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// waits records what the client asks to wait, without waiting.
type waits struct {
	mu  sync.Mutex
	got []time.Duration
}

func (w *waits) wait(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, d)
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

// fakeBackend is a manager on the in-memory store. Its knobs make the
// leader-only calls (and linearizable reads) answer as a follower or as a
// manager without a leader would.
type fakeBackend struct {
	store state.Store
	id    string

	mu         sync.Mutex
	leader     *api.Manager // not nil: a follower of this leader
	noLeader   int          // answer the next n leader-only calls with ErrNoLeader
	failWith   error        // answer every call with this
	applied    uint64
	tokens     map[string]string
	managers   []*api.AddManagerRequest
	heartbeats []string
	subs       []chan api.Event
	subscribed chan struct{} // receives when Events has subscribed

	backup       []byte
	backupIndex  uint64
	backupFailAt int // fail after this many bytes; -1 never
}

func newFakeBackend(id string) *fakeBackend {
	return &fakeBackend{
		store:        state.NewMemory(),
		id:           id,
		tokens:       map[string]string{api.RoleWorker: "SWMTKN-worker-1", api.RoleManager: "SWMTKN-manager-1"},
		subscribed:   make(chan struct{}, 10),
		backupFailAt: -1,
	}
}

func (b *fakeBackend) set(fn func(b *fakeBackend)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fn(b)
}

// gate answers for a call that needs the leader.
func (b *fakeBackend) gate() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.failWith != nil:
		return b.failWith
	case b.noLeader > 0:
		b.noLeader--
		return fmt.Errorf("fake: %w: an election is under way", api.ErrNoLeader)
	case b.leader != nil:
		return &api.NotLeaderError{Leader: *b.leader}
	}
	return nil
}

var objects = map[fsm.Kind]string{
	fsm.KindCreateService: "service", fsm.KindUpdateService: "service", fsm.KindDeleteService: "service",
	fsm.KindCreateVolume: "volume", fsm.KindUpdateVolume: "volume", fsm.KindDeleteVolume: "volume",
	fsm.KindCreateNetwork: "network", fsm.KindUpdateNetwork: "network", fsm.KindDeleteNetwork: "network",
	fsm.KindRegisterNode: "node", fsm.KindUpdateNode: "node", fsm.KindSetNodeStatus: "node",
	fsm.KindReportTasks: "container", fsm.KindPlanTasks: "container",
}

func commandID(cmd fsm.Command) string {
	switch c := cmd.(type) {
	case *fsm.CreateService:
		return c.Service.ID
	case *fsm.UpdateService:
		return c.Service.ID
	case *fsm.DeleteService:
		return c.ID
	case *fsm.RegisterNode:
		return c.Node.ID
	case *fsm.UpdateNode:
		return c.Node.ID
	}
	return ""
}

func (b *fakeBackend) Apply(_ context.Context, cmd fsm.Command) error {
	if err := b.gate(); err != nil {
		return err
	}
	if err := fsm.Apply(b.store, cmd); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.applied++
	e := api.Event{Index: b.applied, Command: cmd.Kind().String(), Object: objects[cmd.Kind()], ID: commandID(cmd)}
	for _, s := range b.subs {
		s <- e
	}
	return nil
}

func (b *fakeBackend) Read(_ context.Context, stale bool, fn func(state.Reader) error) error {
	if !stale {
		if err := b.gate(); err != nil {
			return err
		}
	}
	return b.store.View(fn)
}

func (b *fakeBackend) Health() api.Health {
	b.mu.Lock()
	defer b.mu.Unlock()
	return api.Health{ID: b.id, Leader: b.leader == nil, Applied: b.applied}
}

func (b *fakeBackend) Cluster(context.Context) (*api.ClusterInfo, error) {
	return &api.ClusterInfo{ID: "cluster-1", CreatedAt: typestest.Epoch, CADigest: "sha256:00", Leader: b.id,
		AnsweredBy: b.id, Managers: []api.Manager{{ID: b.id, APIAddr: "127.0.0.1:1", Voter: true, Leader: true, Reachable: true}}}, nil
}

func (b *fakeBackend) Join(ctx context.Context, req *api.JoinRequest) (*api.JoinResponse, error) {
	if err := b.gate(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	ok := req.Token == b.tokens[req.Role]
	b.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("fake: %w: the token is not this cluster's %s token", api.ErrUnauthorized, req.Role)
	}
	n := typestest.Node(api.NewID())
	n.Role, n.Hostname, n.Address = types.NodeRole(req.Role), req.Hostname, req.Addr
	if err := b.Apply(ctx, &fsm.RegisterNode{Node: n}); err != nil {
		return nil, err
	}
	return &api.JoinResponse{NodeID: n.ID, ClusterID: "cluster-1", CACert: []byte("ca"), Cert: []byte("cert"), Key: []byte("key")}, nil
}

func (b *fakeBackend) AddManager(_ context.Context, req *api.AddManagerRequest) error {
	if err := b.gate(); err != nil {
		return err
	}
	b.set(func(b *fakeBackend) { b.managers = append(b.managers, req) })
	return nil
}

func (b *fakeBackend) JoinToken(_ context.Context, role string, rotate bool) (string, error) {
	if err := b.gate(); err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if rotate {
		b.tokens[role] = "SWMTKN-" + role + "-" + api.NewID()
	}
	return b.tokens[role], nil
}

func (b *fakeBackend) Heartbeat(ctx context.Context, nodeID string, req *api.HeartbeatRequest) (*api.HeartbeatResponse, error) {
	if err := b.gate(); err != nil {
		return nil, err
	}
	if len(req.Statuses) > 0 {
		if err := b.Apply(ctx, &fsm.ReportTasks{Statuses: req.Statuses}); err != nil {
			return nil, err
		}
	}
	tasks, err := b.store.ListContainersByNode(nodeID)
	if err != nil {
		return nil, err
	}
	resp := &api.HeartbeatResponse{Committed: req.Statuses, Managers: []api.Manager{{ID: b.id, APIAddr: "127.0.0.1:1"}}}
	for _, t := range tasks {
		resp.Assignments = append(resp.Assignments, agent.Assignment{Task: t})
	}
	b.set(func(b *fakeBackend) { b.heartbeats = append(b.heartbeats, nodeID) })
	return resp, nil
}

func (b *fakeBackend) RemoveNode(ctx context.Context, id string, force bool) error {
	if err := b.gate(); err != nil {
		return err
	}
	n, err := b.store.GetNode(id)
	if err != nil {
		return err
	}
	if n.Status == types.NodeReady && !force {
		return fmt.Errorf("fake: %w: node %s is up: drain it, or pass --force", fsm.ErrConflict, id)
	}
	return b.store.DeleteNode(id)
}

func (b *fakeBackend) SetRole(ctx context.Context, id, role string) error {
	if err := b.gate(); err != nil {
		return err
	}
	n, err := b.store.GetNode(id)
	if err != nil {
		return err
	}
	if string(n.Role) == role {
		return fmt.Errorf("fake: %w: node %s is a %s already", fsm.ErrConflict, id, role)
	}
	n.Role = types.NodeRole(role)
	return b.Apply(ctx, &fsm.UpdateNode{Node: n})
}

func (b *fakeBackend) Certificate(_ context.Context, nodeID string) (*api.JoinResponse, error) {
	if err := b.gate(); err != nil {
		return nil, err
	}
	n, err := b.store.GetNode(nodeID)
	if err != nil {
		return nil, err
	}
	return &api.JoinResponse{NodeID: n.ID, ClusterID: "cluster-1", CACert: []byte("ca"), Cert: []byte("cert-" + string(n.Role)), Key: []byte("key")}, nil
}

func (b *fakeBackend) Events(ctx context.Context, fn func(api.Event) error) error {
	ch := make(chan api.Event, 100)
	b.set(func(b *fakeBackend) { b.subs = append(b.subs, ch) })
	defer b.set(func(b *fakeBackend) {
		b.subs = slices.DeleteFunc(b.subs, func(s chan api.Event) bool { return s == ch })
	})
	b.subscribed <- struct{}{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-ch:
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}

var errDiskOnFire = errors.New("fake: the disk is on fire")

func (b *fakeBackend) Backup(_ context.Context, w io.Writer) (uint64, error) {
	b.mu.Lock()
	data, index, failAt := b.backup, b.backupIndex, b.backupFailAt
	b.mu.Unlock()
	if failAt >= 0 {
		if _, err := w.Write(data[:failAt]); err != nil {
			return 0, err
		}
		return 0, errDiskOnFire
	}
	_, err := w.Write(data)
	return index, err
}

// testServer is one manager's API served over TLS as the daemon serves
// it, counting the requests it gets.
type testServer struct {
	*httptest.Server
	backend *fakeBackend
	hits    atomic.Int32
}

func (s *testServer) addr() string { return s.Listener.Addr().String() }

func serverTLS(ca *testCA) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{ca.issue("manager-tls", api.RoleManager)},
		ClientCAs:    ca.pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}
}

func startServer(ca *testCA, clock *testClock, b *fakeBackend) *testServer {
	s := &testServer{backend: b}
	h := api.NewHandler(api.HandlerConfig{Backend: b, Clock: clock, RoleOf: roleOf})
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	s.TLS = serverTLS(ca)
	s.EnableHTTP2 = true
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	s.StartTLS()
	DeferCleanup(s.Close)
	return s
}

// startHangUp serves TLS and drops every request once it has read it, as
// a manager that crashes mid-request does.
func startHangUp(ca *testCA) *testServer {
	s := &testServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		s.hits.Add(1)
		panic(http.ErrAbortHandler)
	}))
	s.TLS = serverTLS(ca)
	s.EnableHTTP2 = true
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	s.StartTLS()
	DeferCleanup(s.Close)
	return s
}

// closedAddr is an address nobody listens on.
func closedAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	Expect(l.Close()).To(Succeed())
	return addr
}

func newClient(tlsCfg *tls.Config, w *waits, managers ...string) *api.Client {
	c, err := api.NewClient(api.ClientConfig{Managers: managers, TLS: tlsCfg, Wait: w.wait})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.Close)
	return c
}

// adminOfOneServer starts one manager on a fake backend and returns an
// admin client of it.
func adminOfOneServer() (*testCA, *testServer, *api.Client) {
	GinkgoHelper()
	ca := newTestCA()
	srv := startServer(ca, &testClock{t: typestest.Epoch}, newFakeBackend("m1"))
	cert := ca.issue("ops", api.RoleAdmin)
	return ca, srv, newClient(ca.clientTLS(&cert), &waits{}, srv.addr())
}
