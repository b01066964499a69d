package fake_test

import (
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/fake"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Clock", func() {
	var clock *fake.Clock
	BeforeEach(func() { clock = fake.NewClock(typestest.Epoch) })

	When("nobody moves it", func() {
		It("stays at the time it was made with", func() {
			Expect(clock.Now()).To(Equal(typestest.Epoch))
			Expect(clock.Now()).To(Equal(typestest.Epoch))
		})
	})

	When("moved", func() {
		It("advances by exactly the duration given", func() {
			clock.Advance(1500 * time.Millisecond)
			clock.Advance(time.Nanosecond)
			Expect(clock.Now()).To(Equal(typestest.Epoch.Add(1500*time.Millisecond + time.Nanosecond)))
		})

		It("can be set anywhere, backwards included", func() {
			clock.Set(typestest.Epoch.Add(-time.Hour))
			Expect(clock.Now()).To(Equal(typestest.Epoch.Add(-time.Hour)))
		})

		It("refuses to advance backwards", func() {
			Expect(func() { clock.Advance(-time.Second) }).To(PanicWith(ContainSubstring("use Set")))
			Expect(clock.Now()).To(Equal(typestest.Epoch))
		})

		It("loses no advance made concurrently", func() {
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for range 100 {
						clock.Advance(time.Millisecond)
						_ = clock.Now()
					}
				})
			}
			wg.Wait()
			Expect(clock.Now()).To(Equal(typestest.Epoch.Add(800 * time.Millisecond)))
		})
	})
})
