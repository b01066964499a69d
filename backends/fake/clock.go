package fake

import (
	"fmt"
	"sync"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator"
)

// Clock is an orchestrator.Clock that moves only when told to: tests and the
// simulator advance it, so time-dependent behaviour is exact and repeatable.
// It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

var _ orchestrator.Clock = (*Clock)(nil)

// NewClock returns a Clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d. It panics on a negative d: that is
// nearly always a duration computed the wrong way round, and time running
// backwards would make the fake Runtime undo what it reported; use Set to
// go back on purpose.
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		panic(fmt.Sprintf("fake: Clock.Advance(%s): time cannot go backwards; use Set", d))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t, forwards or backwards.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
