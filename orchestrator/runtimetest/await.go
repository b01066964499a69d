package runtimetest

import (
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive
)

// Advancer is a clock a test moves by hand, such as fake.Clock.
type Advancer interface {
	Advance(d time.Duration)
}

// VirtualAwait returns a Harness.Await for a runtime in virtual time: it
// advances clock by step until cond holds, and fails the spec once limit
// has passed. It never sleeps, so a spec takes no real time whatever the
// latencies it models.
func VirtualAwait(clock Advancer, step, limit time.Duration) func(what string, cond func() bool) {
	return func(what string, cond func() bool) {
		GinkgoHelper()
		for waited := time.Duration(0); waited < limit && !cond(); waited += step {
			clock.Advance(step)
		}
		Expect(cond()).To(BeTrue(), "%s: still not so after %s of virtual time", what, limit)
	}
}

// RealAwait returns a Harness.Await for a runtime in real time: it polls
// cond every poll until it holds, and fails the spec after timeout.
func RealAwait(timeout, poll time.Duration) func(what string, cond func() bool) {
	return func(what string, cond func() bool) {
		GinkgoHelper()
		Eventually(cond).WithTimeout(timeout).WithPolling(poll).Should(BeTrue(), "%s: still not so after %s", what, timeout)
	}
}
