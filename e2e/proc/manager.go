package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	// ErrExited is wrapped by the error for a warren process that exited
	// before it said it was running.
	ErrExited = errors.New("proc: the warren process exited")
	// ErrRunning is wrapped by the error for starting a manager whose
	// process still runs.
	ErrRunning = errors.New("proc: the manager is already running")
)

// readyMark is what `warren cluster init`, `manager join` and `start` print
// on stdout once the node serves, after init's or join's first steps (a
// joining manager is a raft voter by then). Polling /v1/health instead
// would not tell a joining manager that serves from one that has joined.
var readyMark = []byte(" is running; ")

// tailLines is how many lines of a manager's log an error quotes.
const tailLines = 30

// Manager is one warren manager: its addresses, data directory and log,
// and its process while one runs. Safe for concurrent use.
type Manager struct {
	// Name is m1, m2, ...: the manager's place in its cluster.
	Name string
	// Bin is the warren binary; DataDir, APIAddr and RaftAddr are the
	// manager's --data-dir, --api-addr and --advertise-addr.
	Bin, DataDir, APIAddr, RaftAddr string
	// LogPath collects the stdout and stderr of every process run for
	// this manager, in order, each after a "===" line naming its command.
	LogPath string
	// LogLevel is its --log-level.
	LogLevel string
	// Runtime are the flags init and join get for the node's runtime;
	// `--runtime simulated` when empty.
	Runtime []string

	mu  sync.Mutex
	cur *run // the last process started; nil once killed
}

// run is one process of a manager.
type run struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned and the log is closed
	err    error         // Wait's, set before exited is closed
}

func (r *run) running() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// Init runs `warren cluster init` for the manager and waits until it serves.
func (m *Manager) Init(ctx context.Context) error {
	return m.start(ctx, append([]string{"cluster", "init", "--api-addr", m.APIAddr, "--advertise-addr", m.RaftAddr}, m.runtime()...)...)
}

// Join runs `warren manager join` through the manager at via and waits
// until the new manager serves as a raft voter.
func (m *Manager) Join(ctx context.Context, via, token string) error {
	return m.start(ctx, append([]string{"manager", "join", "--manager", via, "--token", token,
		"--api-addr", m.APIAddr, "--advertise-addr", m.RaftAddr}, m.runtime()...)...)
}

func (m *Manager) runtime() []string {
	if len(m.Runtime) == 0 {
		return []string{"--runtime", "simulated"}
	}
	return m.Runtime
}

// Start runs `warren start` on the manager's data directory (after Init
// or Join, and a Kill) and waits until it serves.
func (m *Manager) Start(ctx context.Context) error {
	return m.start(ctx, "start")
}

// start runs warren with args and the manager's global flags, and waits
// until it prints readyMark. ctx bounds the wait, not the process: a
// manager runs until Kill.
func (m *Manager) start(ctx context.Context, args ...string) error {
	args = append(args, "--data-dir", m.DataDir, "--log-level", m.LogLevel)
	m.mu.Lock()
	if m.cur != nil && m.cur.running() {
		m.mu.Unlock()
		return fmt.Errorf("%w: %s (pid %d): kill it first", ErrRunning, m.Name, m.cur.cmd.Process.Pid)
	}
	log, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("proc: %s: %w", m.Name, err)
	}
	fmt.Fprintf(log, "=== %s %s %s\n", time.Now().Format(time.RFC3339Nano), m.Bin, strings.Join(args, " "))
	ready := make(chan struct{})
	cmd := exec.Command(m.Bin, args...)
	cmd.Stdout = &readyWriter{w: log, ready: ready}
	cmd.Stderr = log // an *os.File: the child writes it directly, with O_APPEND
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		_ = log.Close()
		return fmt.Errorf("proc: %s: start %s: %w", m.Name, m.Bin, err)
	}
	r := &run{cmd: cmd, exited: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		_ = log.Close()
		close(r.exited)
	}()
	m.cur = r
	m.mu.Unlock()

	select {
	case <-ready:
		return nil
	case <-r.exited:
		return fmt.Errorf("%w: %s: warren %s: %v; the end of %s:\n%s",
			ErrExited, m.Name, strings.Join(args, " "), r.err, m.LogPath, m.Tail(tailLines))
	case <-ctx.Done():
		_, _ = m.Kill()
		return fmt.Errorf("proc: %s: warren %s did not say it runs: %w; the end of %s:\n%s",
			m.Name, strings.Join(args, " "), ctx.Err(), m.LogPath, m.Tail(tailLines))
	}
}

// Running reports whether the manager's process runs.
func (m *Manager) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur != nil && m.cur.running()
}

// Pid is the process ID of the manager's process, 0 when none runs.
func (m *Manager) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur == nil || !m.cur.running() {
		return 0
	}
	return m.cur.cmd.Process.Pid
}

// Kill sends the manager's process SIGKILL and waits until it is gone and
// its log complete. It returns when the signal was sent, the instant a
// failover is timed from; the zero time when no process ran.
func (m *Manager) Kill() (time.Time, error) {
	m.mu.Lock()
	r := m.cur
	m.cur = nil
	m.mu.Unlock()
	if r == nil {
		return time.Time{}, nil
	}
	at := time.Now()
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return at, fmt.Errorf("proc: %s: kill pid %d: %w", m.Name, r.cmd.Process.Pid, err)
	}
	<-r.exited
	return at, nil
}

// CLI runs a one-shot warren command as the administrator of the
// manager's data directory (its admin certificate), talking to the
// managers at addrs, and returns its stdout.
func (m *Manager) CLI(ctx context.Context, addrs []string, args ...string) (string, error) {
	args = append([]string{"--data-dir", m.DataDir, "--manager", strings.Join(addrs, ",")}, args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, m.Bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("proc: warren %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// Tail returns the last n lines of the manager's log.
func (m *Manager) Tail(n int) string {
	data, err := os.ReadFile(m.LogPath)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// readyWriter copies a process's stdout to its log and closes ready once
// the output holds readyMark. exec.Cmd calls Write from one goroutine.
type readyWriter struct {
	w     io.Writer
	ready chan struct{}
	seen  []byte // the output so far, until readyMark
	done  bool
}

func (r *readyWriter) Write(p []byte) (int, error) {
	if !r.done {
		r.seen = append(r.seen, p...)
		if bytes.Contains(r.seen, readyMark) {
			r.done, r.seen = true, nil
			close(r.ready)
		}
	}
	return r.w.Write(p)
}
