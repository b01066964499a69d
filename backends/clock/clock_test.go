package clock_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/clock"
)

var _ = Describe("Wall", func() {
	When("read", func() {
		It("tells the system time", func() {
			Expect(clock.Wall{}.Now()).To(BeTemporally("~", time.Now(), time.Second))
		})

		It("keeps the monotonic reading, so durations survive a wall-clock step", func() {
			// time.Time.String shows the monotonic reading as "m=±..."; UTC(),
			// In() and Round(0) would strip it.
			Expect(clock.Wall{}.Now().String()).To(ContainSubstring(" m="))
		})
	})

	When("waiting", func() {
		It("returns after the duration, or with the context's error once it ends", func() {
			Expect(clock.Wall{}.Wait(context.Background(), time.Millisecond)).To(Succeed())
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			Expect(clock.Wall{}.Wait(ctx, time.Hour)).To(MatchError(context.Canceled))
		})
	})
})
