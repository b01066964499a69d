package sim

import (
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"time"
)

// Epoch is the wall-clock time virtual time 0 stands for; records the
// simulated core writes carry times after it.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Engine is the event loop: a queue ordered by (virtual time, sequence),
// one random source, and the trace. Not safe for concurrent use: a run is
// one goroutine.
type Engine struct {
	now   time.Duration
	seq   uint64
	queue events
	Rand  *rand.Rand
	trace hash.Hash
	out   io.Writer // where trace lines also go, or nil
	steps uint64
}

type event struct {
	at  time.Duration
	seq uint64
	fn  func()
}

type events []event

func (e events) Len() int { return len(e) }
func (e events) Less(i, j int) bool {
	if e[i].at != e[j].at {
		return e[i].at < e[j].at
	}
	return e[i].seq < e[j].seq
}
func (e events) Swap(i, j int) { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)   { *e = append(*e, x.(event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

// NewEngine returns an engine whose randomness all comes from seed.
// Trace lines also go to out when it is not nil.
func NewEngine(seed uint64, out io.Writer) *Engine {
	return &Engine{Rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), trace: sha256.New(), out: out}
}

// Elapsed is the virtual time since the start of the run.
func (e *Engine) Elapsed() time.Duration { return e.now }

// Now implements orchestrator.Clock in virtual time.
func (e *Engine) Now() time.Time { return Epoch.Add(e.now) }

// After runs fn d from now (at once, after the events already due, if d
// is not positive).
func (e *Engine) After(d time.Duration, fn func()) {
	e.seq++
	heap.Push(&e.queue, event{at: e.now + max(d, 0), seq: e.seq, fn: fn})
}

// Run runs events until none are left or the next is after until; the
// clock then stands at until. check runs after every event; a non-nil
// error stops the run.
func (e *Engine) Run(until time.Duration, check func() error) error {
	for e.queue.Len() > 0 && e.queue[0].at <= until {
		ev := heap.Pop(&e.queue).(event)
		e.now = ev.at
		// The hash covers when and in which order every event ran, so a
		// run that diverges anywhere (a draw, a message, a timer) changes it.
		e.Mix(uint64(ev.at), ev.seq)
		ev.fn()
		e.steps++
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
	}
	e.now = max(e.now, until)
	return nil
}

// Steps is how many events have run.
func (e *Engine) Steps() uint64 { return e.steps }

// Tracef adds a line to the trace, stamped with the virtual time.
func (e *Engine) Tracef(format string, args ...any) {
	line := fmt.Sprintf("%12d %s\n", e.now.Microseconds(), fmt.Sprintf(format, args...))
	_, _ = io.WriteString(e.trace, line)
	if e.out != nil {
		_, _ = io.WriteString(e.out, line)
	}
}

// Mix adds values to the trace hash without a trace line: cheap enough for
// every event and every applied entry.
func (e *Engine) Mix(vs ...uint64) {
	var b [8]byte
	for _, v := range vs {
		binary.LittleEndian.PutUint64(b[:], v)
		_, _ = e.trace.Write(b[:])
	}
}

// TraceHash is the hash of every trace line and Mix so far.
func (e *Engine) TraceHash() string { return hex.EncodeToString(e.trace.Sum(nil)) }

// Between draws a duration uniformly from [lo, hi].
func (e *Engine) Between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(e.Rand.Int64N(int64(hi-lo)+1))
}

// Chance reports true with probability p.
func (e *Engine) Chance(p float64) bool { return p > 0 && e.Rand.Float64() < p }

// life is whether a simulated node is up, and which life it is in: a crash
// bumps epoch, so callbacks scheduled before it do nothing after.
type life struct {
	alive bool
	epoch int
}

// guard wraps a callback so that it does nothing once its node has crashed,
// even if the node has restarted since.
func (l *life) guard(fn func()) func() {
	epoch := l.epoch
	return func() {
		if l.alive && l.epoch == epoch {
			fn()
		}
	}
}
