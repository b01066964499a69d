// Package health runs a container's health check and keeps its status, with
// Docker's semantics: a probe every Interval; a success makes the container
// healthy at once; Retries consecutive failures make it unhealthy; failures
// during StartPeriod do not count until a probe has succeeded.
//
// A Monitor owns one goroutine per container. It reads the container only
// through Target, so the containerd runtime and the tests hand it what they
// have, and it schedules probes by an injected Clock, so tests step through
// intervals instead of sleeping through them.
package health

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/warren-orchestrator/warren/backends/clock"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Defaults for the zero (or negative) fields of a types.HealthCheck, Docker's.
const (
	DefaultInterval = 30 * time.Second
	DefaultTimeout  = 30 * time.Second
	DefaultRetries  = 3
)

// firstProbeDelay caps the wait before the first probe. Docker waits a whole
// Interval (30 s by default), which holds back a rolling update for as long;
// probing at once would mostly catch a process that has not bound its port
// yet. A second is enough for most to be listening; slower ones need
// StartPeriod, as in Docker.
const firstProbeDelay = time.Second

// maxOutputBytes bounds Result.Output: it ends up in the task's error
// message, which people read in a table and the store keeps per task.
const maxOutputBytes = 256

// Target is the container a check probes.
type Target interface {
	// Addr is the container's IP address; an invalid netip.Addr when it has
	// none, and http and tcp checks then fail with ErrNoAddress.
	Addr() netip.Addr
	// Exec runs argv inside the container and returns its exit code. ctx
	// carries the probe's timeout and Stop: Exec must return once ctx is
	// done (killing the process), or the Monitor, and Stop, wait for it.
	Exec(ctx context.Context, argv []string) (exitCode int, err error)
}

// Clock is the time a Monitor schedules probes by; clock.Wall is the
// default. A probe's Timeout is not measured by it: it bounds real I/O, so
// it is a context deadline on the wall clock.
type Clock interface {
	// Now stamps Results and measures the start period.
	Now() time.Time
	// Wait returns after d, or with ctx's error once ctx is done.
	Wait(ctx context.Context, d time.Duration) error
}

// Option configures a Monitor at Start.
type Option func(*Monitor)

// WithClock makes the Monitor schedule probes by c instead of the wall clock.
func WithClock(c Clock) Option { return func(m *Monitor) { m.clock = c } }

// WithStartedAt makes the start period run from t, when the container
// started, rather than from Start: a runtime that adopts a running container
// after a restart must not grant it a fresh start period.
func WithStartedAt(t time.Time) Option { return func(m *Monitor) { m.startedAt = t } }

// Result is the outcome of one probe.
type Result struct {
	Time time.Time // when the probe began, by the Monitor's clock; zero before the first
	OK   bool
	// Output is what the probe saw, at most a few hundred bytes, for the
	// task's error message: "GET http://10.0.0.5:8080/healthz: 200 OK",
	// "exit code 0", or Err's message.
	Output string
	// Err says why the probe failed, wrapping one of the ErrX of this
	// package or the error of the Target or the network; nil when OK.
	Err error
}

// Monitor runs one container's health check on its own goroutine until Stop.
type Monitor struct {
	hc        types.HealthCheck // defaults applied
	target    Target
	clock     Clock
	startedAt time.Time
	client    *http.Client // for http checks; keep-alives off
	cancel    context.CancelFunc
	done      chan struct{} // closed when run returns

	mu       sync.Mutex
	status   types.HealthStatus
	failures int // consecutive failures that counted
	last     Result
}

// Start starts monitoring t with hc and returns at once; the first probe
// runs after min(Interval, 1 s). hc is copied. A nil or invalid hc is not
// refused: every probe then fails with ErrInvalidCheck, so the task turns
// unhealthy with a message that says what to fix.
func Start(hc *types.HealthCheck, t Target, opts ...Option) *Monitor {
	m := &Monitor{target: t, clock: clock.Wall{}, status: types.HealthUnknown, done: make(chan struct{})}
	if hc != nil {
		m.hc = *hc
		m.hc.Command = slices.Clone(hc.Command)
	}
	if m.hc.Interval <= 0 {
		m.hc.Interval = DefaultInterval
	}
	if m.hc.Timeout <= 0 {
		m.hc.Timeout = DefaultTimeout
	}
	if m.hc.Retries <= 0 {
		m.hc.Retries = DefaultRetries
	}
	for _, o := range opts {
		o(m)
	}
	if m.startedAt.IsZero() {
		m.startedAt = m.clock.Now()
	}
	if m.hc.Type == types.HealthCheckHTTP {
		m.client = newHTTPClient()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.run(ctx)
	return m
}

// Status is the container's health: unknown until a probe succeeds or
// Retries failures have counted.
func (m *Monitor) Status() types.HealthStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

// Last is the last probe's result; the zero Result before the first.
func (m *Monitor) Last() Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// Stop stops the monitor, interrupting a probe in progress (whose result is
// dropped), and returns once its goroutine has. It may be called more than
// once, and concurrently.
func (m *Monitor) Stop() {
	m.cancel()
	<-m.done
}

func (m *Monitor) run(ctx context.Context) {
	defer close(m.done)
	// Each wait runs from the end of the previous probe, as in Docker, so a
	// probe that takes up to Timeout never overlaps the next one.
	wait := min(m.hc.Interval, firstProbeDelay)
	for {
		if m.clock.Wait(ctx, wait) != nil {
			return
		}
		wait = m.hc.Interval
		r := m.probe(ctx)
		if ctx.Err() != nil {
			return // stopped mid-probe: the failure is ours, not the container's
		}
		m.record(r)
	}
}

// record folds a probe's result into the status, as Docker's
// handleProbeResult does.
func (m *Monitor) record(r Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = r
	switch {
	case r.OK:
		m.failures = 0
		m.status = types.HealthHealthy
	case m.status == types.HealthUnknown && r.Time.Sub(m.startedAt) < m.hc.StartPeriod:
		// Still starting: the failure does not count. A success ends the
		// start period early, since the status is then no longer unknown.
	default:
		m.failures++
		if m.failures >= m.hc.Retries {
			m.status = types.HealthUnhealthy
		}
	}
}
