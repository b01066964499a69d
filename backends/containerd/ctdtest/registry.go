package ctdtest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Registry is a Docker registry (Debian's docker-registry, distribution
// 2.8) of the test's own on 127.0.0.1, storing under a directory of the
// test, plain HTTP (containerd's resolver speaks it to localhost).
type Registry struct {
	// Addr is host:port, as image references name it.
	Addr string
	cmd  *exec.Cmd
}

// StartRegistry starts a registry storing under dir and waits until it
// answers.
func StartRegistry(dir string) (*Registry, error) {
	if _, err := exec.LookPath("docker-registry"); err != nil {
		return nil, errors.New("ctdtest: docker-registry not found: install Debian's docker-registry (sudo bash ci/install-deps.sh)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	config := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "storage"), addr)
	path := filepath.Join(dir, "registry.yml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command("docker-registry", "serve", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ctdtest: start docker-registry: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	r := &Registry{Addr: addr, cmd: cmd}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
	}
	_ = r.Stop()
	return nil, fmt.Errorf("ctdtest: docker-registry did not answer at %s within 20 s: see %s", addr, filepath.Join(dir, "registry.log"))
}

// Stop stops the registry.
func (r *Registry) Stop() error {
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}
