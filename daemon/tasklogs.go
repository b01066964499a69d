package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync/atomic"
	"time"

	"github.com/warren-orchestrator/warren/backends/clock"
	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/state"
)

// logPoll is how often a followed log is checked for new output: the
// runtime's shim appends to a plain file, which offers nothing to wait on
// without a dependency (inotify), and a quarter second is quick enough
// for a person watching.
const logPoll = 250 * time.Millisecond

// logPather is a runtime that keeps each task's output in a file (the
// containerd runtime; the simulated one keeps none).
type logPather interface {
	LogPath(taskID string) string
}

// taskLogs serves this node's task logs (api.NodeBackend): to the
// managers through the node endpoints, and to the manager half of this
// very node directly. It reads the runtime from an atomic: the runtime is
// made on the worker's goroutine (at start, or once a manager that ran no
// tasks is demoted), and the log requests come on the servers' goroutines.
type taskLogs struct {
	nodeID string
	rt     atomic.Value // holdsRuntime
	wait   func(context.Context, time.Duration) error
}

type holdsRuntime struct{ rt orchestrator.Runtime }

var _ api.NodeBackend = (*taskLogs)(nil)

func newTaskLogs(nodeID string) *taskLogs {
	return &taskLogs{nodeID: nodeID, wait: clock.Wall{}.Wait}
}

func (l *taskLogs) setRuntime(rt orchestrator.Runtime) { l.rt.Store(holdsRuntime{rt}) }

func (l *taskLogs) runtime() orchestrator.Runtime {
	h, _ := l.rt.Load().(holdsRuntime)
	return h.rt
}

// OpenTaskLog implements api.NodeBackend.
func (l *taskLogs) OpenTaskLog(ctx context.Context, taskID string, opts api.LogOptions) (io.ReadCloser, error) {
	rt := l.runtime()
	if rt == nil {
		return nil, fmt.Errorf("%w: node %s runs no tasks, so it has no log of task %s", state.ErrNotFound, l.nodeID, taskID)
	}
	lp, ok := rt.(logPather)
	if !ok {
		return nil, fmt.Errorf("%w: node %s runs its tasks with the simulated runtime, which starts no container and keeps no logs (task %s): run workers with --runtime %s to have logs",
			errors.ErrUnsupported, l.nodeID, taskID, RuntimeContainerd)
	}
	path := lp.LogPath(taskID)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: node %s has no log of task %s: the task has not started on this node, or its log was removed after it ended",
			state.ErrNotFound, l.nodeID, taskID)
	}
	if err != nil {
		return nil, fmt.Errorf("daemon: the log of task %s: %w", taskID, err)
	}
	if opts.Tail >= 0 {
		off, err := tailOffset(f, opts.Tail)
		if err == nil {
			_, err = f.Seek(off, io.SeekStart)
		}
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("daemon: the log of task %s: %w", taskID, err)
		}
	}
	return &logReader{ctx: ctx, f: f, follow: opts.Follow, wait: l.wait}, nil
}

// logReader reads a log file to its end, or, following it, on as it
// grows, until its context ends (which ends the stream: io.EOF).
type logReader struct {
	ctx    context.Context
	f      *os.File
	follow bool
	wait   func(context.Context, time.Duration) error
}

func (r *logReader) Read(p []byte) (int, error) {
	for {
		n, err := r.f.Read(p)
		if n > 0 {
			return n, nil // a later Read gets the error again, if any
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if !r.follow || r.ctx.Err() != nil {
			return 0, io.EOF
		}
		if rewound, err := r.rewindIfTruncated(); err != nil || rewound {
			if err != nil {
				return 0, err
			}
			continue
		}
		if r.wait(r.ctx, logPoll) != nil {
			return 0, io.EOF // the client went away
		}
	}
}

// rewindIfTruncated starts over at the beginning of a log that was cut
// shorter than what was read of it (a log the runtime started afresh).
func (r *logReader) rewindIfTruncated() (bool, error) {
	st, err := r.f.Stat()
	if err != nil {
		return false, err
	}
	off, err := r.f.Seek(0, io.SeekCurrent)
	if err != nil || st.Size() >= off {
		return false, err
	}
	_, err = r.f.Seek(0, io.SeekStart)
	return err == nil, err
}

func (r *logReader) Close() error { return r.f.Close() }

// tailChunk is how much of a log tailOffset reads at a time, from the end.
const tailChunk = 64 << 10

// tailOffset is where the last n lines of f begin. A last line without
// its newline (one being written) counts as a line.
func tailOffset(f *os.File, n int) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := st.Size()
	if n == 0 {
		return end, nil
	}
	buf := make([]byte, tailChunk)
	newlines := 0
	for pos := end; pos > 0; {
		size := min(int64(len(buf)), pos)
		pos -= size
		if _, err := f.ReadAt(buf[:size], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := size - 1; i >= 0; i-- {
			if buf[i] != '\n' || pos+i == end-1 {
				continue // the final newline ends the last line, it starts none
			}
			newlines++
			if newlines == n {
				return pos + i + 1, nil
			}
		}
	}
	return 0, nil
}
