package cninet

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// createNetns makes a new network namespace and bind-mounts it on path,
// which must not exist (os.ErrExist otherwise). The mount keeps the
// namespace alive with no process in it, as `ip netns add` does.
func createNetns(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return err
		}
		return fmt.Errorf("cninet: create netns file: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("cninet: create netns file: %w", err)
	}

	errc := make(chan error, 1)
	go func() {
		// The thread never gets its namespace back and is never
		// unlocked, so the runtime kills it when this goroutine returns:
		// no other goroutine can ever run in the new namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("cninet: unshare network namespace: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("cninet: bind-mount network namespace on %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		_ = os.Remove(path)
		return err
	}
	return nil
}

// isNetns says whether path is a mounted network namespace (false if it
// does not exist or is the bare file a failed createNetns left).
func isNetns(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("cninet: stat netns %s: %w", path, err)
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// removeNetns unmounts and removes path; it is no error if either is
// already done.
func removeNetns(path string) error {
	// MNT_DETACH: a process still in the namespace (or a plugin still
	// holding it open) must not make the unmount fail; the namespace
	// goes when its last user does.
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("cninet: unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cninet: remove netns file %s: %w", path, err)
	}
	return nil
}

// enableForwarding turns on IPv4 forwarding, which outbound access and
// published ports both need (the node routes between the bridge and its
// other interfaces).
func enableForwarding() error {
	const path = "/proc/sys/net/ipv4/ip_forward"
	b, err := os.ReadFile(path)
	if err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("cninet: enable IPv4 forwarding (%s): %w: run as root", path, err)
	}
	return nil
}
