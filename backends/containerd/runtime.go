// Package containerd is the core's Runtime on a real containerd: each task
// is a containerd container and task in the namespace "warren" (so that
// `ctr -n warren containers ls` lists what Warren runs), made from an image
// in containerd's store and run by runc.
//
// The runtime keeps what it must remember in containerd itself, as labels
// on the container (the task ID, when it started, whether and until when a
// stop was asked), so that a worker that restarts, or a containerd that
// restarts under a running worker, loses nothing: Containers reads the
// state back and the agent adopts what it finds. What it keeps in memory
// is only the containers it is still creating and the tasks that failed
// before they got a container.
//
// On the node, around each container:
//   - secrets: a tmpfs per task at SecretsDir/ID, files mode 0400 owned by
//     the container's user, bind-mounted read-only at /run/secrets; never
//     on a disk, and unmounted once the task has stopped;
//   - volumes: local directories VolumesDir/NAME, bind-mounted (read-only
//     when the mount says so);
//   - logs: the task's stdout and stderr, written by containerd's shim to
//     LogsDir/ID.log, kept LogRetention after the container is removed.
package containerd

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/identifiers"
	"github.com/containerd/containerd/namespaces"

	"github.com/warren-orchestrator/warren/backends/containerd/cninet"
	"github.com/warren-orchestrator/warren/backends/containerd/health"
	"github.com/warren-orchestrator/warren/orchestrator"
)

// Defaults of Config.
const (
	DefaultAddress      = "/run/containerd/containerd.sock"
	DefaultNamespace    = "warren"
	DefaultSnapshotter  = "overlayfs"
	DefaultVolumesDir   = "/var/lib/warren/volumes"
	DefaultLogsDir      = "/var/lib/warren/logs"
	DefaultSecretsDir   = "/run/warren/secrets"
	DefaultLogRetention = 24 * time.Hour
	DefaultRunDir       = "/run/warren/containers"
)

// Labels Warren puts on its containers.
const (
	// LabelTask is the task ID; every container of Warren's has it.
	LabelTask = "warren.task"
	// LabelService is the service's name, for people reading `ctr`.
	LabelService = "warren.service"
	// LabelNode is the node the container belongs to: a runtime sees only
	// its node's containers, so that several nodes may share a containerd
	// (a test machine, the demo).
	LabelNode    = "warren.node"
	labelStarted = "warren.started" // RFC 3339, once the process started
	// labelStop is set by Stop: the instant SIGKILL is due (RFC 3339). A
	// container with it that has exited was shut down on request.
	labelStop = "warren.stop"
	// labelIP is the container's address on the bridge.
	labelIP = "warren.ip"
)

// SecretsTarget is where a container finds its secrets, one file each.
const SecretsTarget = "/run/secrets"

// rpcTimeout bounds one call to containerd; pullTimeout an image pull.
const (
	rpcTimeout  = 30 * time.Second
	pullTimeout = 10 * time.Minute
)

// Config says which containerd to use and where the node keeps what
// belongs to its containers.
type Config struct {
	// Address is containerd's gRPC socket (DefaultAddress when empty).
	Address string
	// Namespace is the containerd namespace (DefaultNamespace when empty).
	Namespace string
	// NodeID is the node whose containers these are (required).
	NodeID string
	// Snapshotter unpacks images (DefaultSnapshotter when empty).
	Snapshotter string
	// VolumesDir holds local volumes, one directory each
	// (DefaultVolumesDir when empty).
	VolumesDir string
	// LogsDir holds the tasks' output, one file each (DefaultLogsDir when
	// empty).
	LogsDir string
	// SecretsDir is where each task's secrets tmpfs is mounted
	// (DefaultSecretsDir when empty).
	SecretsDir string
	// LogRetention is how long a removed task's log is kept
	// (DefaultLogRetention when zero).
	LogRetention time.Duration
	// Network is the containers' bridge network (cninet's defaults for
	// zero fields, but for StateDir and NetnsDir, which default to a
	// directory of the bridge's under cninet's: nodes on different bridges
	// never sweep each other's containers).
	Network cninet.Config
	// RunDir holds each container's generated /etc/hosts and
	// /etc/resolv.conf (DefaultRunDir when empty).
	RunDir string
	// Clock stamps what containerd does not (a start); the wall clock in
	// production.
	Clock orchestrator.Clock
	// Log receives what the runtime did on its own (a kill at a stop
	// timeout, a cleanup that failed); nil discards it.
	Log *slog.Logger
}

func (c *Config) setDefaults() {
	c.Address = cmp.Or(c.Address, DefaultAddress)
	c.Namespace = cmp.Or(c.Namespace, DefaultNamespace)
	c.Snapshotter = cmp.Or(c.Snapshotter, DefaultSnapshotter)
	c.VolumesDir = cmp.Or(c.VolumesDir, DefaultVolumesDir)
	c.LogsDir = cmp.Or(c.LogsDir, DefaultLogsDir)
	c.SecretsDir = cmp.Or(c.SecretsDir, DefaultSecretsDir)
	c.LogRetention = cmp.Or(c.LogRetention, DefaultLogRetention)
	c.RunDir = cmp.Or(c.RunDir, DefaultRunDir)
	bridge := cmp.Or(c.Network.Bridge, cninet.DefaultBridge)
	c.Network.StateDir = cmp.Or(c.Network.StateDir, filepath.Join(cninet.DefaultStateDir, bridge))
	c.Network.NetnsDir = cmp.Or(c.Network.NetnsDir, filepath.Join(cninet.DefaultNetnsDir, bridge))
	c.Network.Owner = c.NodeID
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Runtime is an orchestrator.Runtime on containerd. It is safe for
// concurrent use.
type Runtime struct {
	cfg    Config
	client *containerd.Client
	net    *cninet.Network
	ctx    context.Context // namespaced; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	// creating bounds how many containers are made at once: starting
	// twenty at a time on a small node only makes them contend for its
	// cores and for the network plugins' locks.
	creating chan struct{}

	mu sync.Mutex
	// starting holds the tasks whose container is being made, by task ID.
	starting map[string]*starting
	// ended holds the tasks that ended before they had a container (the
	// image could not be had, runc refused the command, a stop came
	// first), by task ID, until Remove.
	ended map[string]orchestrator.RuntimeContainer
	// monitors run the health checks of running containers, by
	// containerd ID.
	monitors map[string]*health.Monitor
}

// starting is a task being made into a running container.
type starting struct {
	id        string // containerd ID
	createdAt time.Time
	// stop is set by a Stop that came while the container was made.
	stop    bool
	timeout time.Duration
}

var _ orchestrator.Runtime = (*Runtime)(nil)

// New connects to containerd and makes the node's directories. It does
// not wait for containerd: a runtime made while containerd is down works
// once it is up.
func New(cfg Config) (*Runtime, error) {
	cfg.setDefaults()
	if cfg.Clock == nil {
		return nil, errors.New("containerd runtime: Config.Clock is nil")
	}
	if err := identifiers.Validate(cfg.NodeID); err != nil {
		return nil, fmt.Errorf("containerd runtime: Config.NodeID: %w", err)
	}
	// VolumesDir is made with the first volume: a task fails if it cannot
	// be, not the worker.
	if err := os.MkdirAll(cfg.LogsDir, 0o755); err != nil {
		return nil, fmt.Errorf("containerd runtime: %w", err)
	}
	if err := os.MkdirAll(cfg.SecretsDir, 0o700); err != nil {
		return nil, fmt.Errorf("containerd runtime: %w", err)
	}
	network, err := cninet.New(cfg.Network)
	if err != nil {
		return nil, fmt.Errorf("containerd runtime: %w", err)
	}
	client, err := containerd.New(cfg.Address, containerd.WithDefaultNamespace(cfg.Namespace))
	if err != nil {
		return nil, fmt.Errorf("containerd runtime: connect to %s: %w", cfg.Address, err)
	}
	ctx, cancel := context.WithCancel(namespaces.WithNamespace(context.Background(), cfg.Namespace))
	return &Runtime{
		cfg: cfg, client: client, net: network, ctx: ctx, cancel: cancel,
		starting: map[string]*starting{}, ended: map[string]orchestrator.RuntimeContainer{},
		monitors: map[string]*health.Monitor{},
		creating: make(chan struct{}, max(2, runtime.NumCPU())),
	}, nil
}

// Close stops the runtime's own work (starts in flight are abandoned, and
// found again as containers that never started by the next runtime) and
// disconnects. Containers keep running: a worker that restarts adopts them.
// Closing twice does nothing more.
func (r *Runtime) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		r.stopMonitors(nil)
		r.wg.Wait()
		r.closeErr = r.client.Close()
	})
	return r.closeErr
}

// Client is the containerd client the runtime uses, for what is beyond the
// Runtime interface (image load, logs, health checks).
func (r *Runtime) Client() *containerd.Client { return r.client }

// Context is a context in the runtime's namespace, cancelled by Close.
func (r *Runtime) Context() context.Context { return r.ctx }

// ContainerID is the containerd ID of a task's container: the task ID
// itself when containerd accepts it (so that `ctr` shows it), else a digest
// of it.
func ContainerID(taskID string) string {
	if identifiers.Validate(taskID) == nil {
		return taskID
	}
	sum := sha256.Sum256([]byte(taskID))
	return "warren-" + hex.EncodeToString(sum[:16])
}

// containerIP is the container's address on the node's bridge network;
// invalid if it is not known.
func (r *Runtime) containerIP(id string) netip.Addr {
	ctx, cancel := context.WithTimeout(r.ctx, rpcTimeout)
	defer cancel()
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return netip.Addr{}
	}
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return netip.Addr{}
	}
	ip, _ := netip.ParseAddr(labels[labelIP])
	return ip
}

// SecretsDir is where the tasks' secrets tmpfs are mounted, one directory
// per container.
func (r *Runtime) SecretsDir() string { return r.cfg.SecretsDir }

// LogPath is where the output of the task's container is kept.
func (r *Runtime) LogPath(taskID string) string {
	return filepath.Join(r.cfg.LogsDir, ContainerID(taskID)+".log")
}
