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
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	taskapi "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/identifiers"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/plugin"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/distribution/reference"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/warren-orchestrator/warren/backends/containerd/cninet"
	"github.com/warren-orchestrator/warren/backends/containerd/health"
	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/types"
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
	// RuncRoot is runc's state directory; empty is runc's default
	// (/run/containerd/runc/NAMESPACE), which every containerd on the
	// machine shares: tests that run containerds side by side give each
	// its own.
	RuncRoot string
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

	// secretsMu orders mounting a task's secrets before a sweep of
	// SecretsDir, so that a sweep never unmounts a start's fresh tmpfs.
	secretsMu sync.Mutex

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

// Start takes the task and makes its container in the background: it is
// listed as pending until it runs, or failed with the reason it could not
// (the image, a volume, runc refusing the command).
func (r *Runtime) Start(task *types.Container, secrets map[string][]byte) error {
	if task == nil {
		return errors.New("containerd runtime: Start was given no task")
	}
	if err := task.Validate(); err != nil {
		return fmt.Errorf("containerd runtime: refusing the task: %w", err)
	}
	for name := range secrets {
		if err := types.ValidateName(name); err != nil {
			return fmt.Errorf("containerd runtime: refusing the task: secret %q: %w", name, err)
		}
	}
	id := ContainerID(task.ID)
	r.mu.Lock()
	_, busy := r.starting[task.ID]
	_, ended := r.ended[task.ID]
	if !busy && !ended {
		r.starting[task.ID] = &starting{id: id, createdAt: r.cfg.Clock.Now()}
	}
	r.mu.Unlock()
	if busy || ended {
		return fmt.Errorf("%w (task %s): remove its container before starting it again", orchestrator.ErrContainerExists, task.ID)
	}
	ctx, cancel := context.WithTimeout(r.ctx, rpcTimeout)
	_, err := r.client.ContainerService().Get(ctx, id)
	cancel()
	if err == nil || !errdefs.IsNotFound(err) {
		r.mu.Lock()
		delete(r.starting, task.ID)
		r.mu.Unlock()
		if err == nil {
			return fmt.Errorf("%w (task %s, container %s): remove its container before starting it again", orchestrator.ErrContainerExists, task.ID, id)
		}
		return fmt.Errorf("containerd runtime: look up container %s: %w", id, err)
	}
	task = types.Clone(task)
	secrets = cloneSecrets(secrets)
	r.wg.Go(func() { r.run(task, secrets) })
	return nil
}

// run makes and starts the task's container, and records how that ended.
func (r *Runtime) run(task *types.Container, secrets map[string][]byte) {
	id := ContainerID(task.ID)
	var state types.ContainerState
	var err error
	select {
	case r.creating <- struct{}{}:
		state, err = r.create(task, secrets)
		<-r.creating
	case <-r.ctx.Done():
		err = fmt.Errorf("the worker stopped before it could start the task: %w", r.ctx.Err())
	}
	clear(secrets)
	r.mu.Lock()
	s := r.starting[task.ID]
	delete(r.starting, task.ID)
	if err != nil || state == types.ContainerShutdown {
		rc := orchestrator.RuntimeContainer{TaskID: task.ID, RuntimeID: id, State: state,
			Health: types.HealthUnknown, FinishedAt: r.cfg.Clock.Now()}
		if err != nil {
			rc.State, rc.Error = types.ContainerFailed, err.Error()
		}
		r.ended[task.ID] = rc
	}
	r.mu.Unlock()
	if err == nil && state == types.ContainerRunning && s.stop {
		// The stop came after the last look before the start.
		if err := r.Stop(task.ID, s.timeout); err != nil {
			r.cfg.Log.Warn("stop after start", "task", task.ID, "err", err)
		}
	}
}

// create makes the task's container and starts it, unless a Stop came
// first (then it is shut down, and removed from containerd). On an error,
// everything made for it is removed again.
func (r *Runtime) create(task *types.Container, secrets map[string][]byte) (_ types.ContainerState, err error) {
	id := ContainerID(task.ID)
	img, err := r.image(task.Image)
	if err != nil {
		return "", err
	}
	var undo []func()
	defer func() {
		if err != nil {
			for _, u := range slices.Backward(undo) {
				u()
			}
		}
	}()

	mounts, err := r.volumeMounts(task)
	if err != nil {
		return "", err
	}
	if len(secrets) > 0 {
		dir, err := r.mountSecrets(id)
		if err != nil {
			return "", err
		}
		undo = append(undo, func() { r.unmountSecrets(id) })
		mounts = append(mounts, specs.Mount{Destination: SecretsTarget, Type: "bind", Source: dir,
			Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}})
	}

	att, err := r.net.Setup(r.ctx, id, ports(task))
	if err != nil {
		return "", fmt.Errorf("network: %w", err)
	}
	undo = append(undo, func() { r.teardownNetwork(id) })
	files, err := r.writeNetworkFiles(id, hostname(id), att)
	if err != nil {
		return "", err
	}
	mounts = append(mounts, files...)

	opts := []oci.SpecOpts{oci.WithImageConfig(img)}
	switch {
	case len(task.Command) > 0:
		opts = append(opts, oci.WithProcessArgs(append(slices.Clone(task.Command), task.Args...)...))
	case len(task.Args) > 0:
		opts = append(opts, oci.WithImageConfigArgs(img, task.Args))
	}
	if len(task.Env) > 0 {
		opts = append(opts, oci.WithEnv(task.Env))
	}
	if task.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(task.WorkingDir))
	}
	if task.User != "" {
		opts = append(opts, oci.WithUser(task.User))
	}
	if res := task.Resources; res != nil {
		if res.CPULimit > 0 {
			opts = append(opts, oci.WithCPUCFS(int64(res.CPULimit*cfsPeriod), cfsPeriod))
		}
		if res.MemoryLimit > 0 {
			opts = append(opts, oci.WithMemoryLimit(uint64(res.MemoryLimit)))
		}
	}
	opts = append(opts, oci.WithHostname(hostname(id)), oci.WithMounts(mounts),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: att.NetnsPath}))

	labels := map[string]string{LabelTask: task.ID, LabelService: task.ServiceName, LabelNode: r.cfg.NodeID,
		labelIP: att.IP.String()}
	if labels[labelHealth], err = healthLabel(task.HealthCheck); err != nil {
		return "", fmt.Errorf("health check: %w", err)
	}
	if labels[labelHealth] == "" {
		delete(labels, labelHealth)
	}
	ctx, cancel := context.WithTimeout(r.ctx, rpcTimeout)
	defer cancel()
	// The task has no container (Start checked), so a snapshot of its name
	// is left over: from a container whose spec failed (its snapshot goes
	// only with containerd's next garbage collection), or a crash.
	r.removeSnapshot(ctx, id)
	var runtimeOpts any
	if r.cfg.RuncRoot != "" {
		runtimeOpts = &runcoptions.Options{Root: r.cfg.RuncRoot}
	}
	ctr, err := r.client.NewContainer(ctx, id,
		containerd.WithRuntime(plugin.RuntimeRuncV2, runtimeOpts),
		containerd.WithImage(img),
		containerd.WithSnapshotter(r.cfg.Snapshotter),
		containerd.WithNewSnapshot(id, img),
		containerd.WithContainerLabels(labels),
		containerd.WithNewSpec(opts...))
	if err != nil {
		r.removeSnapshot(ctx, id)
		if strings.Contains(err.Error(), "no users found") || strings.Contains(err.Error(), "no groups found") {
			return "", fmt.Errorf("user %q is not in the image %s's /etc/passwd or /etc/group: use a numeric UID[:GID] or a user the image has", task.User, task.Image)
		}
		return "", fmt.Errorf("create the container: %w", err)
	}
	undo = append(undo, func() { r.deleteContainer(ctr) })

	if len(secrets) > 0 {
		spec, err := ctr.Spec(ctx)
		if err != nil {
			return "", fmt.Errorf("read the container's spec: %w", err)
		}
		if err := r.writeSecrets(id, secrets, int(spec.Process.User.UID), int(spec.Process.User.GID)); err != nil {
			return "", err
		}
	}

	logPath := r.LogPath(task.ID)
	t, err := ctr.NewTask(ctx, cio.LogFile(logPath))
	if err != nil {
		return "", startError(task, err)
	}
	undo = append(undo, func() {
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(r.ctx), rpcTimeout)
		defer dcancel()
		_, _ = t.Delete(dctx, containerd.WithProcessKill)
	})

	r.mu.Lock()
	stop := r.starting[task.ID].stop
	r.mu.Unlock()
	if stop {
		for _, u := range slices.Backward(undo) {
			u()
		}
		return types.ContainerShutdown, nil
	}
	// Stamped before the start: a process that exits at once must not end
	// before it started.
	startedAt := r.cfg.Clock.Now()
	if err := t.Start(ctx); err != nil {
		return "", startError(task, err)
	}
	if _, err := ctr.SetLabels(ctx, map[string]string{labelStarted: startedAt.Format(time.RFC3339Nano)}); err != nil {
		r.cfg.Log.Warn("record the start", "task", task.ID, "err", err)
	}
	return types.ContainerRunning, nil
}

// cfsPeriod is the CFS period of a CPU limit, in microseconds (Docker's).
const cfsPeriod = 100000

// startError says why runc could not start the task, in terms of the task.
func startError(task *types.Container, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") && strings.Contains(msg, "exec") {
		return fmt.Errorf("start: the command is not in the image %s: %w (check the service's command and args)", task.Image, err)
	}
	return fmt.Errorf("start: %w", err)
}

// hostname is the container's host name: its ID, cut to a DNS label.
func hostname(id string) string {
	if len(id) > 63 {
		id = id[:63]
	}
	return strings.Trim(strings.ReplaceAll(id, ".", "-"), "-")
}

// image returns the task's image from containerd's store, unpacked; one
// that is not there is pulled.
func (r *Runtime) image(ref string) (containerd.Image, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", ref, err)
	}
	full := reference.TagNameOnly(named).String()
	ctx, cancel := context.WithTimeout(r.ctx, pullTimeout)
	defer cancel()
	img, err := r.client.GetImage(ctx, full)
	switch {
	case errdefs.IsNotFound(err):
		img, err = r.client.Pull(ctx, full, containerd.WithPullUnpack, containerd.WithPullSnapshotter(r.cfg.Snapshotter),
			containerd.WithResolver(Resolver()))
		if err != nil {
			return nil, fmt.Errorf("image %s is not on this node and could not be pulled (%v): load it with `warren image load FILE.tar` on the node, or make its registry reachable", full, err)
		}
		return img, nil
	case err != nil:
		return nil, fmt.Errorf("image %s: %w", full, err)
	}
	unpacked, err := img.IsUnpacked(ctx, r.cfg.Snapshotter)
	if err == nil && !unpacked {
		err = img.Unpack(ctx, r.cfg.Snapshotter)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: unpack: %w", full, err)
	}
	return img, nil
}

// Resolver finds registries as Docker does: HTTPS, but plain HTTP for a
// registry on localhost (a node's own, or a test's).
func Resolver() remotes.Resolver {
	return docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchLocalhost)),
	})
}

// volumeMounts are the task's volumes as bind mounts of their directories,
// made if missing.
func (r *Runtime) volumeMounts(task *types.Container) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range task.Mounts {
		if err := types.ValidateName(m.Source); err != nil {
			return nil, fmt.Errorf("volume %q: %w", m.Source, err)
		}
		dir := filepath.Join(r.cfg.VolumesDir, m.Source)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("volume %s: cannot make its directory: %w (check %s on this node)", m.Source, err, r.cfg.VolumesDir)
		}
		opts := []string{"rbind", "rw"}
		if m.ReadOnly {
			opts[1] = "ro"
		}
		out = append(out, specs.Mount{Destination: m.Target, Type: "bind", Source: dir, Options: opts})
	}
	return out, nil
}

// Stop sends SIGTERM to the task's container and SIGKILL once timeout has
// passed. A container still being made is not started. Stopping one that
// has exited, or was asked to stop already, changes nothing.
func (r *Runtime) Stop(taskID string, timeout time.Duration) error {
	r.mu.Lock()
	if s, ok := r.starting[taskID]; ok {
		if !s.stop {
			s.stop, s.timeout = true, timeout
		}
		r.mu.Unlock()
		return nil
	}
	_, ended := r.ended[taskID]
	r.mu.Unlock()
	if ended {
		return nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, rpcTimeout)
	defer cancel()
	ctr, labels, err := r.load(ctx, taskID)
	if err != nil {
		return err
	}
	if labels[labelStop] != "" {
		return nil
	}
	t, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil // never started, or gone with containerd's state: not live
	}
	if err != nil {
		return fmt.Errorf("containerd runtime: stop task %s: %w", taskID, err)
	}
	st, err := t.Status(ctx)
	if err != nil {
		return fmt.Errorf("containerd runtime: stop task %s: %w", taskID, err)
	}
	if st.Status == containerd.Stopped {
		return nil
	}
	timeout = max(timeout, 0)
	deadline := r.cfg.Clock.Now().Add(timeout)
	if _, err := ctr.SetLabels(ctx, map[string]string{labelStop: deadline.Format(time.RFC3339Nano)}); err != nil {
		return fmt.Errorf("containerd runtime: stop task %s: %w", taskID, err)
	}
	exited, err := t.Wait(r.ctx)
	if err != nil {
		return fmt.Errorf("containerd runtime: stop task %s: %w", taskID, err)
	}
	if st.Status == containerd.Created {
		// Never started: nothing to ask politely.
		return r.kill(t, syscall.SIGKILL)
	}
	if err := r.kill(t, syscall.SIGTERM); err != nil {
		return fmt.Errorf("containerd runtime: stop task %s: %w", taskID, err)
	}
	r.wg.Go(func() {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-exited:
		case <-r.ctx.Done():
			// Containers sees the deadline in the label and kills then.
		case <-timer.C:
			r.cfg.Log.Info("stop timeout: SIGKILL", "task", taskID, "timeout", timeout)
			if err := r.kill(t, syscall.SIGKILL); err != nil {
				r.cfg.Log.Warn("SIGKILL at the stop timeout", "task", taskID, "err", err)
			}
		}
	})
	return nil
}

// load returns the task's container and its labels; ErrNoContainer if
// there is none of this node's.
func (r *Runtime) load(ctx context.Context, taskID string) (containerd.Container, map[string]string, error) {
	ctr, err := r.client.LoadContainer(ctx, ContainerID(taskID))
	if errdefs.IsNotFound(err) {
		return nil, nil, fmt.Errorf("%w (task %s)", orchestrator.ErrNoContainer, taskID)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("containerd runtime: task %s: %w", taskID, err)
	}
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("containerd runtime: task %s: %w", taskID, err)
	}
	if labels[LabelNode] != r.cfg.NodeID {
		return nil, nil, fmt.Errorf("%w (task %s: its container is node %s's)", orchestrator.ErrNoContainer, taskID, labels[LabelNode])
	}
	return ctr, labels, nil
}

func (r *Runtime) kill(t containerd.Task, sig syscall.Signal) error {
	ctx, cancel := context.WithTimeout(r.ctx, rpcTimeout)
	defer cancel()
	err := t.Kill(ctx, sig, containerd.WithKillAll)
	if errdefs.IsNotFound(err) || err != nil && strings.Contains(err.Error(), "process already finished") {
		return nil
	}
	return err
}

// Remove deletes a stopped container, its task, its snapshot and its
// secrets tmpfs. Its log is kept for LogRetention.
func (r *Runtime) Remove(taskID string) error {
	r.mu.Lock()
	_, busy := r.starting[taskID]
	_, ended := r.ended[taskID]
	if ended {
		delete(r.ended, taskID)
	}
	r.mu.Unlock()
	switch {
	case busy:
		return fmt.Errorf("containerd runtime: the container of task %s is still starting: stop it before removing it", taskID)
	case ended:
		return nil
	}
	id := ContainerID(taskID)
	ctx, cancel := context.WithTimeout(r.ctx, rpcTimeout)
	defer cancel()
	ctr, _, err := r.load(ctx, taskID)
	if err != nil {
		return err
	}
	t, err := ctr.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("containerd runtime: remove task %s: %w", taskID, err)
	default:
		st, err := t.Status(ctx)
		if err != nil {
			return fmt.Errorf("containerd runtime: remove task %s: %w", taskID, err)
		}
		if st.Status == containerd.Running || st.Status == containerd.Paused || st.Status == containerd.Pausing {
			return fmt.Errorf("containerd runtime: the container of task %s is running: stop it before removing it", taskID)
		}
		if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("containerd runtime: remove task %s: %w", taskID, err)
		}
	}
	r.unmountSecrets(id)
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("containerd runtime: remove task %s: %w", taskID, err)
	}
	r.teardownNetwork(id)
	now := r.cfg.Clock.Now()
	_ = os.Chtimes(r.LogPath(taskID), now, now) // the retention counts from here
	return nil
}

// removeSnapshot removes the snapshot named id, if there is one.
func (r *Runtime) removeSnapshot(ctx context.Context, id string) {
	err := r.client.SnapshotService(r.cfg.Snapshotter).Remove(ctx, id)
	if err != nil && !errdefs.IsNotFound(err) {
		r.cfg.Log.Warn("remove a left-over snapshot", "snapshot", id, "err", err)
	}
}

// deleteContainer undoes a container that never ran.
func (r *Runtime) deleteContainer(ctr containerd.Container) {
	// Even after Close: a start that Close cut short leaves nothing.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), rpcTimeout)
	defer cancel()
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		r.cfg.Log.Warn("delete a container that did not start", "container", ctr.ID(), "err", err)
	}
}

// Containers reports every container of Warren's on the node, ordered by
// task ID. On the way it finishes what an earlier runtime left undone: a
// SIGKILL whose stop timeout has passed, the secrets of a task that has
// stopped, the logs past their retention.
func (r *Runtime) Containers() ([]orchestrator.RuntimeContainer, error) {
	ctx, cancel := context.WithTimeout(r.ctx, rpcTimeout)
	defer cancel()
	// The starts in flight before the listings: one that ends while they
	// are made may show in them half made (a container without a task, a
	// task created but not started). It is reported pending, as it was
	// when the look began; the next look sees how it ended.
	r.mu.Lock()
	before := map[string]string{}
	for taskID, s := range r.starting {
		before[taskID] = s.id
	}
	r.mu.Unlock()
	// Ours first, then the tasks: a container made in between has no task
	// in the answer, and is taken for one still starting (it is in
	// r.starting) rather than for one whose task is gone.
	records, err := r.client.ContainerService().List(ctx, fmt.Sprintf("labels.%q,labels.%q==%s", LabelTask, LabelNode, r.cfg.NodeID))
	if err != nil {
		return nil, fmt.Errorf("containerd runtime: list containers: %w", err)
	}
	resp, err := r.client.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("containerd runtime: list tasks: %w", err)
	}
	procs := map[string]*taskapi.Process{}
	for _, p := range resp.Tasks {
		procs[p.ID] = p
	}
	now := r.cfg.Clock.Now()

	r.mu.Lock()
	out := make([]orchestrator.RuntimeContainer, 0, len(records)+len(r.starting)+len(r.ended))
	seen := map[string]bool{}
	// live says, of each container listed, whether its secrets stay.
	live := map[string]bool{}
	for taskID, s := range r.starting {
		out = append(out, orchestrator.RuntimeContainer{TaskID: taskID, RuntimeID: s.id,
			State: types.ContainerPending, Health: types.HealthUnknown})
		seen[taskID] = true
		live[s.id] = true
	}
	for taskID, rc := range r.ended {
		out = append(out, rc)
		seen[taskID] = true
	}
	r.mu.Unlock()
	for taskID, id := range before {
		if !seen[taskID] {
			out = append(out, orchestrator.RuntimeContainer{TaskID: taskID, RuntimeID: id,
				State: types.ContainerPending, Health: types.HealthUnknown})
			seen[taskID] = true
			live[id] = true
		}
	}

	var kill []string
	for _, rec := range records {
		taskID := rec.Labels[LabelTask]
		if seen[taskID] {
			continue
		}
		rc, due := r.observe(rec, procs[rec.ID], now)
		live[rec.ID] = rc.State == types.ContainerRunning || rc.State == types.ContainerPending
		r.checkHealth(rec, &rc)
		if due {
			kill = append(kill, rec.ID)
		}
		out = append(out, rc)
	}
	slices.SortFunc(out, func(a, b orchestrator.RuntimeContainer) int { return strings.Compare(a.TaskID, b.TaskID) })

	for _, id := range kill {
		r.killOverdue(ctx, id)
	}
	r.stopMonitors(live)
	r.sweepSecrets(ctx, live)
	r.sweepNetwork(ctx, live)
	r.sweepLogs(records, now)
	return out, nil
}

// observe is one container as containerd shows it; due says that its stop
// timeout has passed and it still runs.
func (r *Runtime) observe(rec containers.Container, p *taskapi.Process, now time.Time) (orchestrator.RuntimeContainer, bool) {
	rc := orchestrator.RuntimeContainer{TaskID: rec.Labels[LabelTask], RuntimeID: rec.ID, Health: types.HealthUnknown}
	if t, err := time.Parse(time.RFC3339Nano, rec.Labels[labelStarted]); err == nil {
		rc.StartedAt = t
	}
	stopAt, stopped := time.Time{}, rec.Labels[labelStop] != ""
	if stopped {
		stopAt, _ = time.Parse(time.RFC3339Nano, rec.Labels[labelStop])
	}
	if p == nil {
		// The task is gone but the container is not: containerd lost its
		// state (a reboot), or a start was cut short.
		rc.State, rc.FinishedAt = types.ContainerFailed, rec.UpdatedAt
		rc.Error = "the container has no process: the node or containerd restarted under it"
		if stopped {
			rc.State, rc.Error = types.ContainerShutdown, ""
		}
		return rc, false
	}
	switch p.Status {
	case taskapi.Status_RUNNING, taskapi.Status_PAUSED, taskapi.Status_PAUSING:
		rc.State = types.ContainerRunning
		return rc, stopped && !now.Before(stopAt)
	case taskapi.Status_CREATED:
		// Not in r.starting: made by a runtime that stopped before
		// starting it.
		rc.State, rc.FinishedAt = types.ContainerFailed, rec.UpdatedAt
		rc.Error = "the container was created but never started: the worker restarted while starting it"
		if stopped {
			rc.State, rc.Error = types.ContainerShutdown, ""
		}
		return rc, false
	}
	rc.ExitCode = int(p.ExitStatus)
	if p.ExitedAt != nil {
		rc.FinishedAt = p.ExitedAt.AsTime()
	}
	switch {
	case stopped:
		rc.State = types.ContainerShutdown
	case rc.ExitCode == 0:
		rc.State = types.ContainerComplete
	default:
		rc.State = types.ContainerFailed
		rc.Error = exitError(rc.ExitCode)
	}
	return rc, false
}

// exitError says how a process that exited on its own ended.
func exitError(code int) string {
	if code > 128 && code <= 128+64 {
		sig := syscall.Signal(code - 128)
		if sig == syscall.SIGKILL {
			return fmt.Sprintf("exit code %d: killed by SIGKILL (out of memory, if the task has a memory limit)", code)
		}
		return fmt.Sprintf("exit code %d: killed by %s", code, unix.SignalName(sig))
	}
	return fmt.Sprintf("exit code %d", code)
}

// killOverdue sends SIGKILL to a container whose stop timeout has passed:
// the timer of the Stop that asked is gone (the worker restarted).
func (r *Runtime) killOverdue(ctx context.Context, id string) {
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return
	}
	t, err := ctr.Task(ctx, nil)
	if err != nil {
		return
	}
	r.cfg.Log.Info("stop timeout passed: SIGKILL", "container", id)
	if err := r.kill(t, syscall.SIGKILL); err != nil {
		r.cfg.Log.Warn("SIGKILL past the stop timeout", "container", id, "err", err)
	}
}

// sweepLogs deletes the logs of containers that no longer exist once they
// are older than the retention.
func (r *Runtime) sweepLogs(records []containers.Container, now time.Time) {
	entries, err := os.ReadDir(r.cfg.LogsDir)
	if err != nil {
		return
	}
	exists := map[string]bool{}
	for _, rec := range records {
		exists[rec.ID+".log"] = true
	}
	for _, e := range entries {
		if exists[e.Name()] || !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		info, err := e.Info()
		if err == nil && now.Sub(info.ModTime()) > r.cfg.LogRetention {
			_ = os.Remove(filepath.Join(r.cfg.LogsDir, e.Name()))
		}
	}
}

func cloneSecrets(s map[string][]byte) map[string][]byte {
	if s == nil {
		return nil
	}
	out := make(map[string][]byte, len(s))
	for k, v := range s {
		out[k] = slices.Clone(v)
	}
	return out
}
