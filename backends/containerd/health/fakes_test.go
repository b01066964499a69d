package health

import (
	"context"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
)

// handoffTimeout bounds how long a spec waits for the monitor's goroutine to
// reach the next step. It is generous: it only matters when a spec fails,
// and a loaded CI machine under -race can be slow to schedule.
const handoffTimeout = 10 * time.Second

// stepClock is a Clock the spec drives: each Wait announces itself and
// returns only when the spec releases it, with time moved on by the wait.
// Between nextWait and release the monitor is parked, so everything it has
// probed is recorded and the spec can assert on it synchronously.
type stepClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan time.Duration
	steps chan struct{}
}

var _ Clock = (*stepClock)(nil)

func newStepClock(t time.Time) *stepClock {
	return &stepClock{now: t, waits: make(chan time.Duration), steps: make(chan struct{})}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Wait(ctx context.Context, d time.Duration) error {
	select {
	case c.waits <- d:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-c.steps:
		c.mu.Lock()
		c.now = c.now.Add(d)
		c.mu.Unlock()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// nextWait returns the duration of the monitor's next wait once it has
// begun: by then every probe before it has been recorded.
func (c *stepClock) nextWait() time.Duration {
	GinkgoHelper()
	select {
	case d := <-c.waits:
		return d
	case <-time.After(handoffTimeout):
		Fail("the monitor did not wait for its next probe")
		return 0
	}
}

// release ends the wait in progress, so the next probe starts.
func (c *stepClock) release() {
	GinkgoHelper()
	select {
	case c.steps <- struct{}{}:
	case <-time.After(handoffTimeout):
		Fail("the monitor is not waiting")
	}
}

// probe lets the monitor, parked in a wait, run n probes and park again.
func (c *stepClock) probe(n int) {
	GinkgoHelper()
	for range n {
		c.release()
		c.nextWait()
	}
}

// execCall is one call of fakeTarget.Exec. Its fields are exported for
// Gomega's HaveField.
type execCall struct {
	Argv     []string
	Deadline time.Time // ctx's
	CtxErr   error     // ctx's error when Exec returned
}

// fakeTarget is a container whose address is set by the spec and whose
// Exec runs exec (exit code 0 when nil), recording each call.
type fakeTarget struct {
	addr netip.Addr
	exec func(ctx context.Context, argv []string) (int, error)

	mu    sync.Mutex
	calls []execCall
}

var _ Target = (*fakeTarget)(nil)

func (t *fakeTarget) Addr() netip.Addr { return t.addr }

func (t *fakeTarget) Exec(ctx context.Context, argv []string) (int, error) {
	code, err := 0, error(nil)
	if t.exec != nil {
		code, err = t.exec(ctx, argv)
	}
	deadline, _ := ctx.Deadline()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, execCall{Argv: slices.Clone(argv), Deadline: deadline, CtxErr: ctx.Err()})
	return code, err
}

// execs returns the calls so far.
func (t *fakeTarget) execs() []execCall {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.calls)
}

// exitCodes returns an exec that exits with codes in turn, then with the
// last one.
func exitCodes(codes ...int) func(context.Context, []string) (int, error) {
	var mu sync.Mutex
	return func(context.Context, []string) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		code := codes[0]
		if len(codes) > 1 {
			codes = codes[1:]
		}
		return code, nil
	}
}

// blockUntilDone is an exec that ignores nothing: it returns when ctx ends,
// as a Target that kills the process on cancellation would.
func blockUntilDone(ctx context.Context, _ []string) (int, error) {
	<-ctx.Done()
	return 137, nil // SIGKILL, reported as an exit code by runc
}

// monitorGoroutines counts the goroutines running a Monitor's loop.
func monitorGoroutines() int {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "health.(*Monitor).run(")
		}
		buf = make([]byte, 2*len(buf))
	}
}
