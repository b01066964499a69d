// Package clock is the wall clock for the core: the only place production
// code reads time.Now on the core's behalf. The core takes an
// orchestrator.Clock so that the simulator can hand it virtual time instead.
package clock

import (
	"context"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator"
)

// Wall is the orchestrator.Clock of production: it reads the system clock.
// The zero value is ready to use.
type Wall struct{}

var _ orchestrator.Clock = Wall{}

// Now returns time.Now(), monotonic reading included, so that durations the
// core computes between two readings survive wall-clock steps.
func (Wall) Now() time.Time { return time.Now() }

// Wait waits for d or until ctx ends, whichever comes first; the error is
// ctx's when it ended first. Clients of the API retry with it.
func (Wall) Wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
