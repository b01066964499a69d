package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// maxLogLine is the longest line relayed whole; a longer one goes out in
// pieces of this size, as Docker splits lines at 16 KiB.
const maxLogLine = 64 << 10

// notStartedPoll is how often a followed task that has no log yet (it is
// still starting: pulling its image) is asked again.
const notStartedPoll = time.Second

// RelayLogs implements api.Backend: one goroutine per task reads the
// task's log from its node, this manager's own node directly and the
// others over HTTPS, and fn gets their lines one at a time.
func (m *manager) RelayLogs(ctx context.Context, tasks []api.LogTask, opts api.LogOptions, fn func(api.LogEntry) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // before the wait: the readers end with ctx
	entries := make(chan api.LogEntry)
	for _, t := range tasks {
		wg.Go(func() { m.relayTask(ctx, t, opts, entries) })
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	for {
		select {
		case e := <-entries:
			if err := fn(e); err != nil {
				return err
			}
		case <-done:
			return nil
		case <-ctx.Done():
			return nil // the client went away
		}
	}
}

// relayTask sends the lines of one task's log to out until the log ends
// or ctx does.
func (m *manager) relayTask(ctx context.Context, t api.LogTask, opts api.LogOptions, out chan<- api.LogEntry) {
	entry := api.LogEntry{Task: t.Task.ID, NodeID: t.Node.ID, Node: t.Node.Hostname}
	send := func(e api.LogEntry) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	fail := func(err error) {
		e := entry
		e.Error = err.Error()
		send(e)
	}
	var rc io.ReadCloser
	for {
		var err error
		rc, err = m.openTaskLog(ctx, t, opts)
		if err == nil {
			break
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, state.ErrNotFound) && opts.Follow && live(t.Task):
			// Still starting: its output will come.
			if m.wait(ctx, notStartedPoll) != nil {
				return
			}
			continue
		case errors.Is(err, state.ErrNotFound):
			// Never started there, or its log is gone: no output to show.
			m.log.Debug("no log of task", "task", t.Task.ID, "node", t.Node.ID, "err", err)
			return
		}
		fail(err)
		return
	}
	defer func() { _ = rc.Close() }()
	br := bufio.NewReaderSize(rc, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			e := entry
			e.Line = string(trimNewline(line))
			if !send(e) {
				return
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF), ctx.Err() != nil:
			return
		default:
			fail(fmt.Errorf("the output of task %s stopped arriving from node %s (%s): %w", t.Task.ID, t.Node.Hostname, t.Node.ID, err))
			return
		}
	}
}

// openTaskLog opens a task's log on its node: this node's own runtime
// when the task is here, else the node's API over HTTPS, with this
// manager's certificate.
func (m *manager) openTaskLog(ctx context.Context, t api.LogTask, opts api.LogOptions) (io.ReadCloser, error) {
	if t.Node.ID == m.id.NodeID {
		return m.local.OpenTaskLog(ctx, t.Task.ID, opts)
	}
	if _, _, err := net.SplitHostPort(t.Node.Address); err != nil {
		// A worker that joined without an API address (or before workers
		// served their logs) is recorded by its IP alone.
		return nil, fmt.Errorf("node %s (%s) has no API address in the state (its address is %q), so its task logs cannot be read: join it again with --api-addr HOST:PORT",
			t.Node.Hostname, t.Node.ID, t.Node.Address)
	}
	rc, err := m.nodes.TaskLog(ctx, t.Node.Address, t.Task.ID, opts)
	if errors.Is(err, api.ErrUnavailable) {
		return nil, fmt.Errorf("node %s (%s) cannot be reached for the logs of task %s (its status: %s): %w", t.Node.Hostname, t.Node.ID, t.Task.ID, t.Node.Status, err)
	}
	return rc, err
}

// live reports whether a task is meant to run and has not ended: one
// whose output may still come.
func live(t *types.Container) bool {
	switch t.ActualState {
	case types.ContainerFailed, types.ContainerComplete, types.ContainerShutdown:
		return false
	}
	return t.DesiredState == types.ContainerRunning
}
