package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/distribution/reference"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

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
	secrets = orchestrator.CloneSecrets(secrets)
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
	ctr, err := r.client.NewContainer(ctx, id,
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
