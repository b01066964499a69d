// Package ctdtest starts a containerd of the test's own: Debian's
// containerd binary with a config whose socket, root and state are under a
// directory of the test, so that it touches nothing of a containerd the
// machine may run. The integration specs of backends/containerd, daemon/
// and bench/ run on it.
package ctdtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	"golang.org/x/sys/unix"
)

// Requirements says what is missing for a containerd of the test's own,
// or nil: root, and the containerd, containerd-shim-runc-v2 and runc
// binaries.
func Requirements() error {
	var missing []string
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	switch {
	case len(missing) > 0:
		return fmt.Errorf("ctdtest: %s not found: install Debian's containerd and runc (sudo bash ci/install-deps.sh)", strings.Join(missing, ", "))
	case os.Geteuid() != 0:
		return errors.New("ctdtest: containerd and runc need root: run the integration specs as root")
	}
	return nil
}

// Daemon is a running containerd of the test's.
type Daemon struct {
	// Address is its gRPC socket.
	Address string
	// Dir holds its config, socket, root, state and log.
	Dir string
	cmd *exec.Cmd
}

// Start starts containerd under dir (a short path: a unix socket's path
// must fit in 108 bytes) and waits until it answers.
func Start(dir string) (*Daemon, error) {
	if err := Requirements(); err != nil {
		return nil, err
	}
	d := &Daemon{Address: filepath.Join(dir, "containerd.sock"), Dir: dir}
	if len(d.Address) > 100 {
		return nil, fmt.Errorf("ctdtest: socket path %s is too long for a unix socket: use a shorter directory", d.Address)
	}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), d.Address, d.Address+".ttrpc", filepath.Join(dir, "debug.sock"))
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
		return nil, err
	}
	if err := d.start(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Daemon) start() error {
	logf, err := os.OpenFile(filepath.Join(d.Dir, "containerd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("containerd", "--config", filepath.Join(d.Dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a test's ^C does not take it down before the
	// cleanup does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("ctdtest: start containerd: %w", err)
	}
	d.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ok, _ := d.serving(); ok {
			go func() { <-exited }()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("ctdtest: containerd exited at start (%v): see %s", err, filepath.Join(d.Dir, "containerd.log"))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return fmt.Errorf("ctdtest: containerd did not answer within 20 s: see %s", filepath.Join(d.Dir, "containerd.log"))
		}
	}
}

func (d *Daemon) serving() (bool, error) {
	if _, err := os.Stat(d.Address); err != nil {
		return false, err
	}
	c, err := containerd.New(d.Address, containerd.WithTimeout(time.Second))
	if err != nil {
		return false, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.IsServing(ctx)
}

// Kill stops containerd with SIGKILL, as a crash would: its shims and
// their containers go on running.
func (d *Daemon) Kill() error {
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := d.cmd.Process.Signal(syscall.Signal(0)); err != nil {
			return nil
		}
	}
	return errors.New("ctdtest: containerd did not die of SIGKILL within 10 s")
}

// Restart starts containerd again after Kill, on the same root and state.
func (d *Daemon) Restart() error { return d.start() }

// Stop deletes every container and task in every namespace, stops
// containerd, and unmounts what is left under its directory.
func (d *Daemon) Stop() error {
	var errs []error
	if c, err := containerd.New(d.Address, containerd.WithTimeout(5*time.Second)); err == nil {
		errs = append(errs, purge(c))
		_ = c.Close()
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	stopped := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := d.cmd.Process.Signal(syscall.Signal(0)); err != nil {
			stopped = true
			break
		}
	}
	if !stopped {
		_ = d.cmd.Process.Kill()
	}
	errs = append(errs, killShims(d.Dir), unmountUnder(d.Dir))
	return errors.Join(errs...)
}

// Purge deletes every container and task in every namespace: what a spec
// left behind.
func (d *Daemon) Purge() error {
	c, err := containerd.New(d.Address, containerd.WithTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	return purge(c)
}

// purge removes every container of every namespace, killing their tasks.
func purge(c *containerd.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nss, err := c.NamespaceService().List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		ctrs, err := c.Containers(nctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ctr := range ctrs {
			if t, err := ctr.Task(nctx, nil); err == nil {
				_, _ = t.Delete(nctx, containerd.WithProcessKill)
			}
			// NotFound: removed meanwhile by whoever made it.
			if err := ctr.Delete(nctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete container %s/%s: %w", ns, ctr.ID(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// killShims kills the shims this daemon started, found by the address in
// their command line, in case a container outlived the purge.
func killShims(dir string) error {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), "containerd-shim") || !strings.Contains(string(cmdline), dir) {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(p.Name(), &pid); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return nil
}

// unmountUnder unmounts every mount point under dir, deepest first.
func unmountUnder(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	var errs []error
	for i := len(points) - 1; i >= 0; i-- {
		if err := unix.Unmount(points[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", points[i], err))
		}
	}
	return errors.Join(errs...)
}
