package proc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Outcome is what the answer to a write says about it.
type Outcome int

const (
	// Acked: the write was applied.
	Acked Outcome = iota
	// Unknown: it may or may not have been. The answer wraps
	// api.ErrOutcomeUnknown (the leader lost the lead while committing
	// it), or api.ErrUnavailable, which covers a connection that broke
	// after the request was sent; the client wraps the same sentinel for
	// managers it could not reach at all, so those count here too.
	Unknown
	// Failed: any other error, which says the write was not applied.
	Failed
)

func (o Outcome) String() string {
	switch o {
	case Acked:
		return "acked"
	case Unknown:
		return "unknown"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Service is the record a Load creates.
func Service(name string) *types.Service {
	return &types.Service{Name: name, Image: "busybox", Replicas: 1, Mode: types.ModeReplicated, DeployStrategy: types.DeployRolling}
}

// Write is one service creation of a Load, and its answer.
type Write struct {
	// Name is the service's, unique to the write.
	Name string
	// Via is the manager whose client sent it.
	Via *Manager
	// Start is when it was sent, End when its answer came.
	Start, End time.Time
	Err        error
}

// Outcome classifies the write's answer.
func (w Write) Outcome() Outcome {
	switch {
	case w.Err == nil:
		return Acked
	case errors.Is(w.Err, api.ErrOutcomeUnknown), errors.Is(w.Err, api.ErrUnavailable):
		return Unknown
	}
	return Failed
}

// Load creates services through every manager of a cluster, one writer
// per manager, until stopped.
type Load struct {
	cancel  context.CancelFunc
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
	clients []*api.Client

	inFlight atomic.Int64 // writes sent and not yet answered

	mu      sync.Mutex
	writes  []Write       // in the order their answers came
	changed chan struct{} // closed and replaced at each answer
}

// StartLoad starts a writer per manager. Each has a client that knows that
// manager only, so that its writes reach the leader through it: a
// follower answers not_leader with the leader's address and the client
// follows. (The client then sends to the leader directly until it fails,
// and comes back through its own manager after every failover.) Each
// writer creates services named PREFIX-mN-SEQ one after the other,
// pausing pace between its writes.
func (c *Cluster) StartLoad(ctx context.Context, prefix string, pace time.Duration) (*Load, error) {
	ctx, cancel := context.WithCancel(ctx)
	l := &Load{cancel: cancel, stop: make(chan struct{}), changed: make(chan struct{})}
	for _, m := range c.Managers {
		client, err := c.Client(m.APIAddr)
		if err != nil {
			l.Abort()
			return nil, err
		}
		l.clients = append(l.clients, client)
		l.wg.Go(func() { l.write(ctx, client, m, prefix, pace) })
	}
	return l, nil
}

func (l *Load) write(ctx context.Context, client *api.Client, via *Manager, prefix string, pace time.Duration) {
	for seq := 0; ; seq++ {
		w := Write{Name: fmt.Sprintf("%s-%s-%05d", prefix, via.Name, seq), Via: via}
		svc := Service(w.Name)
		l.inFlight.Add(1)
		w.Start = time.Now()
		_, w.Err = client.CreateService(ctx, svc)
		w.End = time.Now()
		l.inFlight.Add(-1)
		if ctx.Err() != nil {
			return // aborted: the answer says nothing about the cluster
		}
		l.record(w)
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(pace):
		}
	}
}

func (l *Load) record(w Write) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, w)
	close(l.changed)
	l.changed = make(chan struct{})
}

// Writes returns the answered writes so far, in the order of their answers.
func (l *Load) Writes() []Write {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Write(nil), l.writes...)
}

// Await waits until n answered writes satisfy ok, and returns all that do.
func (l *Load) Await(ctx context.Context, n int, ok func(Write) bool) ([]Write, error) {
	seen := 0 // writes already checked
	var match []Write
	for {
		l.mu.Lock()
		fresh := l.writes[seen:]
		changed := l.changed
		l.mu.Unlock()
		seen += len(fresh)
		for _, w := range fresh {
			if ok(w) {
				match = append(match, w)
			}
		}
		if len(match) >= n {
			return match, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return match, fmt.Errorf("proc: %d of the %d writes awaited: %w", len(match), n, ctx.Err())
		}
	}
}

// AwaitInFlight waits until at least n writes are being sent or awaiting
// their answers, polling every poll: a kill then lands mid-write. The
// count is the writers' own, so a write may just have been answered when
// this returns; the caller's kill is as close as polling gets.
func (l *Load) AwaitInFlight(ctx context.Context, n int, poll time.Duration) error {
	for l.inFlight.Load() < int64(n) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("proc: never %d writes in flight at once: %w", n, ctx.Err())
		case <-time.After(poll):
		}
	}
	return nil
}

// Stop lets each writer finish the write it is sending, stops them, and
// returns every answered write.
func (l *Load) Stop() []Write {
	l.stopped.Do(func() { close(l.stop) })
	l.wg.Wait()
	l.cancel()
	for _, c := range l.clients {
		c.Close()
	}
	return l.Writes()
}

// Abort stops the writers at once, cancelling the writes they are
// sending, which are not recorded; for cleanups after a failure.
func (l *Load) Abort() {
	l.cancel()
	l.Stop()
}
