package health

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

const (
	unknown   = types.HealthUnknown
	healthy   = types.HealthHealthy
	unhealthy = types.HealthUnhealthy
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

var _ = Describe("Monitor", Label("sim"), func() {
	var (
		clk    *stepClock
		target *fakeTarget
		hc     *types.HealthCheck
		opts   []Option
	)

	BeforeEach(func() {
		clk = newStepClock(t0)
		target = &fakeTarget{}
		hc = &types.HealthCheck{Type: types.HealthCheckExec, Command: []string{"check"}, Interval: time.Second}
		opts = []Option{WithClock(clk)}
	})

	// start starts the monitor and returns its first wait, once begun.
	start := func() (*Monitor, time.Duration) {
		m := Start(hc, target, opts...)
		DeferCleanup(m.Stop)
		return m, clk.nextWait()
	}

	// statuses runs one probe per exit code and returns the status after each.
	statuses := func(m *Monitor, n int) []types.HealthStatus {
		var out []types.HealthStatus
		for range n {
			clk.probe(1)
			out = append(out, m.Status())
		}
		return out
	}

	When("started", func() {
		DescribeTable("waits min(Interval, 1s) for the first probe, then Interval between probes",
			func(interval, first, then time.Duration) {
				hc.Interval = interval
				m, wait := start()
				Expect(wait).To(Equal(first))
				Expect(m.Status()).To(Equal(unknown))
				Expect(m.Last()).To(BeZero())
				Expect(target.execs()).To(BeEmpty())
				clk.release()
				Expect(clk.nextWait()).To(Equal(then))
				Expect(target.execs()).To(HaveLen(1))
			},
			Entry("a long Interval", 10*time.Second, time.Second, 10*time.Second),
			Entry("a short Interval", 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond),
			Entry("no Interval: 30s", time.Duration(0), time.Second, 30*time.Second),
		)

		It("does not see later changes to the HealthCheck it was given", func() {
			m, _ := start()
			hc.Command[0] = "changed"
			hc.Type = types.HealthCheckTCP
			clk.probe(1)
			Expect(m.Status()).To(Equal(healthy))
			Expect(target.execs()).To(ConsistOf(HaveField("Argv", []string{"check"})))
		})
	})

	When("probes pass and fail", func() {
		DescribeTable("the status after each probe",
			func(retries int, codes []int, want []types.HealthStatus) {
				hc.Retries = retries
				target.exec = exitCodes(codes...)
				m, _ := start()
				Expect(statuses(m, len(codes))).To(Equal(want))
			},
			Entry("Retries failures in a row: unhealthy", 3, []int{1, 1, 1}, []types.HealthStatus{unknown, unknown, unhealthy}),
			Entry("a success: healthy at once", 3, []int{0}, []types.HealthStatus{healthy}),
			Entry("a success between failures resets the count", 3, []int{1, 1, 0, 1, 1, 1},
				[]types.HealthStatus{unknown, unknown, healthy, healthy, healthy, unhealthy}),
			Entry("a success after unhealthy: healthy again, and failures count anew", 2, []int{1, 1, 0, 1, 1},
				[]types.HealthStatus{unknown, unhealthy, healthy, healthy, unhealthy}),
			Entry("no Retries: 3", 0, []int{1, 1, 1}, []types.HealthStatus{unknown, unknown, unhealthy}),
			Entry("Retries 1: the first failure", 1, []int{1, 0}, []types.HealthStatus{unhealthy, healthy}),
		)

		It("reports the last probe: its time by the clock, whether it passed, and what it saw", func() {
			target.exec = exitCodes(0, 3)
			m, first := start()
			clk.probe(1)
			Expect(m.Last()).To(Equal(Result{Time: t0.Add(first), OK: true, Output: "exit code 0"}))
			clk.probe(1)
			last := m.Last()
			Expect(last.Time).To(Equal(t0.Add(first + hc.Interval)))
			Expect(last.OK).To(BeFalse())
			Expect(last.Err).To(MatchError(ErrExitCode))
			Expect(last.Output).To(Equal(`health: nonzero exit code 3 from ["check"]`))
		})
	})

	When("a StartPeriod is set", func() {
		// Probes at t0+1s, +2s, ...: those before t0+5s are in the start period.
		DescribeTable("the status after each probe",
			func(startedAt time.Duration, codes []int, want []types.HealthStatus) {
				hc.StartPeriod = 5 * time.Second
				hc.Retries = 2
				if startedAt != 0 {
					opts = append(opts, WithStartedAt(t0.Add(startedAt)))
				}
				target.exec = exitCodes(codes...)
				m, _ := start()
				Expect(statuses(m, len(codes))).To(Equal(want))
			},
			Entry("failures during it do not count", time.Duration(0), []int{1, 1, 1, 1, 1, 1},
				[]types.HealthStatus{unknown, unknown, unknown, unknown, unknown, unhealthy}),
			Entry("a success during it ends it: failures count from then on", time.Duration(0), []int{1, 0, 1, 1},
				[]types.HealthStatus{unknown, healthy, healthy, unhealthy}),
			Entry("WithStartedAt: it runs from the container's start", -4*time.Second, []int{1, 1},
				[]types.HealthStatus{unknown, unhealthy}),
		)
	})

	When("stopped", func() {
		It("ends its goroutine, probes no more, and may be stopped again, concurrently", func() {
			m, _ := start()
			clk.probe(1)
			// Eventually: a goroutine lingers a moment after closing done,
			// between Stop returning and its exit, here and in earlier specs.
			Eventually(monitorGoroutines).WithTimeout(handoffTimeout).Should(Equal(1))

			stopped := make(chan struct{})
			for range 3 {
				go func() {
					defer GinkgoRecover()
					m.Stop()
					stopped <- struct{}{}
				}()
			}
			for range 3 {
				Eventually(stopped).WithTimeout(handoffTimeout).Should(Receive())
			}
			Eventually(monitorGoroutines).WithTimeout(handoffTimeout).Should(BeZero())
			m.Stop()
			Consistently(clk.steps).WithTimeout(50 * time.Millisecond).ShouldNot(BeSent(struct{}{}))
			Expect(target.execs()).To(HaveLen(1))
			Expect(m.Status()).To(Equal(healthy))
		})

		It("interrupts a probe in progress, waits for it to end and drops its result", func() {
			hc.Timeout = time.Hour
			entered := make(chan struct{})
			target.exec = func(ctx context.Context, argv []string) (int, error) {
				close(entered)
				code, err := blockUntilDone(ctx, argv)
				time.Sleep(50 * time.Millisecond) // killing the process takes a while
				return code, err
			}
			m, _ := start()
			clk.release()
			Eventually(entered).WithTimeout(handoffTimeout).Should(BeClosed())
			stopped := make(chan struct{})
			go func() {
				m.Stop()
				close(stopped)
			}()
			Eventually(stopped).WithTimeout(handoffTimeout).Should(BeClosed())
			// Exec's call is recorded as it returns: Stop waited for it.
			Expect(target.execs()).To(ConsistOf(HaveField("CtxErr", context.Canceled)))
			Expect(m.Last()).To(BeZero())
			Expect(m.Status()).To(Equal(unknown))
		})
	})
})

var _ = Describe("Monitor on the wall clock", func() {
	It("probes every Interval without being told", func() {
		target := &fakeTarget{}
		m := Start(&types.HealthCheck{Type: types.HealthCheckExec, Command: []string{"true"}, Interval: 10 * time.Millisecond}, target)
		DeferCleanup(m.Stop)
		Eventually(m.Status).WithTimeout(handoffTimeout).Should(Equal(healthy))
		Eventually(func() int { return len(target.execs()) }).WithTimeout(handoffTimeout).Should(BeNumerically(">=", 3))
	})
})
