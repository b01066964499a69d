package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// secretsTmpfsSize caps a task's secrets tmpfs: a secret is at most 1 MiB
// (types.MaxSecretSize), and a task uses few.
const secretsTmpfsSize = "16m"

// mountSecrets mounts a fresh tmpfs for the container's secrets and
// returns its directory. Nothing written there reaches a disk: tmpfs pages
// live in memory (and in swap only if the node has swap).
func (r *Runtime) mountSecrets(id string) (string, error) {
	dir := filepath.Join(r.cfg.SecretsDir, id)
	r.unmountSecrets(id) // a leftover of a start that was cut short
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("secrets: %w", err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC,
		"mode=0755,size="+secretsTmpfsSize); err != nil {
		_ = os.Remove(dir)
		return "", fmt.Errorf("secrets: mount a tmpfs on %s: %w (the worker must run as root)", dir, err)
	}
	return dir, nil
}

// writeSecrets writes each secret to the container's tmpfs, mode 0400,
// owned by the user the container runs as.
func (r *Runtime) writeSecrets(id string, secrets map[string][]byte, uid, gid int) error {
	dir := filepath.Join(r.cfg.SecretsDir, id)
	for name, data := range secrets {
		p := filepath.Join(dir, name)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
		if err != nil {
			return fmt.Errorf("secrets: %w", err)
		}
		_, werr := f.Write(data)
		cerr := f.Close()
		if err := errors.Join(werr, cerr, os.Chown(p, uid, gid)); err != nil {
			return fmt.Errorf("secrets: write %s: %w", name, err)
		}
	}
	return nil
}

// unmountSecrets drops the container's secrets: the tmpfs goes, and its
// content with it.
func (r *Runtime) unmountSecrets(id string) {
	dir := filepath.Join(r.cfg.SecretsDir, id)
	if _, err := os.Stat(dir); err != nil {
		return
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		r.cfg.Log.Warn("unmount a task's secrets", "dir", dir, "err", err)
		return
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.cfg.Log.Warn("remove a task's secrets directory", "dir", dir, "err", err)
	}
}

// sweepSecrets drops the secrets of the tasks that stopped (on their own,
// or while the worker was away) and the leftovers of starts cut short:
// every secrets directory whose container is neither live in listed (this
// Containers call's view) nor being started, nor in containerd now.
func (r *Runtime) sweepSecrets(ctx context.Context, listed map[string]bool) {
	entries, err := os.ReadDir(r.cfg.SecretsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if r.orphan(ctx, e.Name(), listed) {
			r.unmountSecrets(e.Name())
		}
	}
}

// isStarting says whether the container with containerd ID id is being
// made.
func (r *Runtime) isStarting(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.starting {
		if s.id == id {
			return true
		}
	}
	return false
}
