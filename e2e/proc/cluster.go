package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/warren-orchestrator/warren/backends/clock"
	"github.com/warren-orchestrator/warren/backends/pki"
	"github.com/warren-orchestrator/warren/daemon"
	"github.com/warren-orchestrator/warren/orchestrator/api"
)

// ErrUnsettled is wrapped by the error for a cluster that did not settle
// (a known leader, every manager a reachable voter) before the deadline.
var ErrUnsettled = errors.New("proc: the cluster did not settle")

// Config is the cluster StartCluster runs.
type Config struct {
	// Bin is the warren binary (Build).
	Bin string
	// Root holds a directory per manager (m1, m2, ...: its data
	// directory) and its log (m1.log, ...). Put it on a real disk: raft
	// and the state fsync every write.
	Root string
	// Managers is how many to run; 3 when 0.
	Managers int
	// LogLevel is the managers' --log-level; "debug" when empty, as raft
	// logs its elections and warnings at debug only.
	LogLevel string
	// Ready bounds each manager's start; 30 s when 0.
	Ready time.Duration
	// Runtime are the managers' runtime flags (Manager.Runtime).
	Runtime []string
}

// Cluster is a cluster of warren managers, each its own process.
type Cluster struct {
	Managers []*Manager
	// DistinctIPs is whether each manager has its own loopback IP
	// (127.0.0.1, .2, ...); false when only 127.0.0.1 could be bound, and
	// the managers differ by port only.
	DistinctIPs bool
	// admin knows every manager; Health calls through it reach the one
	// they name only.
	admin *api.Client
	ready time.Duration
}

// StartCluster initialises the first manager and joins the others to it,
// one after the other. On error it kills what it started; the error
// quotes the failing manager's log.
func StartCluster(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Managers == 0 {
		cfg.Managers = 3
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "debug"
	}
	if cfg.Ready == 0 {
		cfg.Ready = 30 * time.Second
	}
	ips, distinct := LoopbackIPs(cfg.Managers)
	c := &Cluster{DistinctIPs: distinct, ready: cfg.Ready}
	for i, ip := range ips {
		name := fmt.Sprintf("m%d", i+1)
		apiAddr, err := freeAddr(ip)
		if err != nil {
			return nil, err
		}
		raftAddr, err := freeAddr(ip)
		if err != nil {
			return nil, err
		}
		c.Managers = append(c.Managers, &Manager{
			Name: name, Bin: cfg.Bin, DataDir: filepath.Join(cfg.Root, name),
			APIAddr: apiAddr, RaftAddr: raftAddr, LogPath: filepath.Join(cfg.Root, name+".log"), LogLevel: cfg.LogLevel,
			Runtime: cfg.Runtime,
		})
	}
	if err := c.start(ctx); err != nil {
		c.Kill()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	first := c.Managers[0]
	if err := c.bounded(ctx, first.Init); err != nil {
		return err
	}
	admin, err := c.Client()
	if err != nil {
		return err
	}
	c.admin = admin
	// The token through the CLI, as a person would get it.
	out, err := first.CLI(ctx, []string{first.APIAddr}, "cluster", "join-token", "manager", "-q")
	if err != nil {
		return err
	}
	token := strings.TrimSpace(out)
	for _, m := range c.Managers[1:] {
		if err := c.bounded(ctx, func(ctx context.Context) error { return m.Join(ctx, first.APIAddr, token) }); err != nil {
			return err
		}
	}
	return nil
}

// bounded runs a manager's start within the cluster's ready bound.
func (c *Cluster) bounded(ctx context.Context, start func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.ready)
	defer cancel()
	return start(ctx)
}

// Restart starts m again on its data directory (after Kill), within the
// cluster's ready bound.
func (c *Cluster) Restart(ctx context.Context, m *Manager) error {
	return c.bounded(ctx, m.Start)
}

// Kill kills every manager's process.
func (c *Cluster) Kill() {
	for _, m := range c.Managers {
		_, _ = m.Kill()
	}
	if c.admin != nil {
		c.admin.Close()
	}
}

// Client returns an administrator's client (the admin certificate init
// wrote) of the managers at addrs, every manager's when none are given.
// It follows the leader by itself, as the CLI does.
func (c *Cluster) Client(addrs ...string) (*api.Client, error) {
	if len(addrs) == 0 {
		for _, m := range c.Managers {
			addrs = append(addrs, m.APIAddr)
		}
	}
	dir := filepath.Join(c.Managers[0].DataDir, daemon.PKIDir)
	pool, err := pki.LoadCAPool(dir)
	if err != nil {
		return nil, err
	}
	cert, err := pki.LoadCert(dir, daemon.AdminCertName)
	if err != nil {
		return nil, err
	}
	return api.NewClient(api.ClientConfig{Managers: addrs, TLS: pki.ClientConfig(pool, cert), Wait: clock.Wall{}.Wait})
}

// ByAPIAddr returns the manager serving the API at addr, nil if none.
func (c *Cluster) ByAPIAddr(addr string) *Manager {
	for _, m := range c.Managers {
		if m.APIAddr == addr {
			return m
		}
	}
	return nil
}

// Settled waits until cluster info names a leader and lists every manager
// as a reachable voter, and the leader's own health says it leads; then
// it returns the leader. It polls every poll until ctx ends.
func (c *Cluster) Settled(ctx context.Context, poll time.Duration) (*Manager, error) {
	var why error
	for {
		leader, err := c.settled(ctx)
		if err == nil {
			return leader, nil
		}
		why = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w (last: %w)", ErrUnsettled, ctx.Err(), why)
		case <-time.After(poll):
		}
	}
}

func (c *Cluster) settled(ctx context.Context) (*Manager, error) {
	info, err := c.admin.Cluster(ctx)
	if err != nil {
		return nil, err
	}
	if info.Leader == "" {
		return nil, errors.New("no leader known")
	}
	if len(info.Managers) != len(c.Managers) {
		return nil, fmt.Errorf("%d managers in cluster info, want %d", len(info.Managers), len(c.Managers))
	}
	var leader *Manager
	for _, im := range info.Managers {
		if !im.Voter || !im.Reachable {
			return nil, fmt.Errorf("manager %s at %s: voter %t, reachable %t (%s)", im.ID, im.APIAddr, im.Voter, im.Reachable, im.Error)
		}
		if im.ID == info.Leader {
			leader = c.ByAPIAddr(im.APIAddr)
		}
	}
	if leader == nil {
		return nil, fmt.Errorf("the leader %s is none of this cluster's managers", info.Leader)
	}
	h, err := c.admin.Health(ctx, leader.APIAddr)
	if err != nil {
		return nil, err
	}
	if !h.Leader {
		return nil, fmt.Errorf("%s was named leader but does not lead", leader.Name)
	}
	return leader, nil
}

// Leads reports whether m's own health says it leads now.
func (c *Cluster) Leads(ctx context.Context, m *Manager) bool {
	h, err := c.admin.Health(ctx, m.APIAddr)
	return err == nil && h.Leader
}

// AwaitLeader polls the health of every running manager, every poll,
// until one says it leads; it returns that manager and when it was seen.
func (c *Cluster) AwaitLeader(ctx context.Context, poll time.Duration) (*Manager, time.Time, error) {
	for {
		for _, m := range c.Managers {
			if m.Running() && c.Leads(ctx, m) {
				return m, time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, time.Time{}, fmt.Errorf("proc: no manager leads: %w", ctx.Err())
		case <-time.After(poll):
		}
	}
}

// AwaitCaughtUp waits until m has applied every entry the leader had
// applied when it was called, polling every poll.
func (c *Cluster) AwaitCaughtUp(ctx context.Context, m *Manager, poll time.Duration) error {
	leader, err := c.Settled(ctx, poll)
	if err != nil {
		return err
	}
	lh, err := c.admin.Health(ctx, leader.APIAddr)
	if err != nil {
		return err
	}
	for {
		h, err := c.admin.Health(ctx, m.APIAddr)
		if err == nil && h.Applied >= lh.Applied {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("proc: %s did not catch up with the leader's index %d: %w (health: %+v, %v)", m.Name, lh.Applied, ctx.Err(), h, err)
		case <-time.After(poll):
		}
	}
}

// LoopbackIPs returns n loopback IPs to serve on: 127.0.0.1, .2, ... when
// each can be bound (Linux routes all of 127/8 to lo), else 127.0.0.1 n
// times (macOS, say, has only 127.0.0.1 unless aliased), with distinct
// false.
func LoopbackIPs(n int) (ips []string, distinct bool) {
	for i := range n {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			ips = ips[:0]
			for range n {
				ips = append(ips, "127.0.0.1")
			}
			return ips, false
		}
		_ = l.Close()
		ips = append(ips, ip)
	}
	return ips, true
}

// freeAddr returns ip:port with a port that was free a moment ago: the
// managers need fixed ports (checkAddrs refuses port 0), and they keep
// them across restarts.
func freeAddr(ip string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", fmt.Errorf("proc: find a free port on %s: %w", ip, err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}
