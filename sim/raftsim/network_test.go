package raftsim

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// attach puts a node on the network.
func attach(n *Network, id string) *endpoint {
	e := newEndpoint(id)
	n.up(e)
	return e
}

// named answers a request with the name of the node that served it.
func named(dst *endpoint) (any, bool) { return dst.id, true }

// within waits up to d for an answer.
func within(out <-chan any, d time.Duration) (any, bool) {
	select {
	case a := <-out:
		return a, true
	case <-time.After(d):
		return nil, false
	}
}

var _ = Describe("Network", func() {
	const ms = time.Millisecond
	var cfg NetConfig

	BeforeEach(func() { cfg = NetConfig{LatencyMin: ms, LatencyMax: 3 * ms} })

	It("delays a request and its answer by a drawn latency each", func() {
		var rtts []time.Duration
		synctest.Test(suiteT, func(*testing.T) {
			n := NewNetwork(NewSource(1), cfg)
			a := attach(n, "a")
			attach(n, "b")
			for range 200 {
				start := time.Now()
				out, _ := n.roundTrip(a, "b", named)
				if _, ok := within(out, time.Second); ok {
					rtts = append(rtts, time.Since(start))
				}
			}
			n.Close()
		})
		Expect(rtts).To(HaveLen(200))
		Expect(rtts).To(HaveEach(And(BeNumerically(">=", 2*ms), BeNumerically("<=", 6*ms))))
		Expect(rtts).To(ContainElement(BeNumerically("<", 3*ms)))
		Expect(rtts).To(ContainElement(BeNumerically(">", 5*ms)))
	})

	It("draws the same delays from the same seed, for messages sent in the same order", func() {
		run := func(seed uint64) (rtts []time.Duration) {
			synctest.Test(suiteT, func(*testing.T) {
				n := NewNetwork(NewSource(seed), cfg)
				a := attach(n, "a")
				attach(n, "b")
				for range 20 {
					start := time.Now()
					out, _ := n.roundTrip(a, "b", named)
					<-out
					rtts = append(rtts, time.Since(start))
				}
				n.Close()
			})
			return rtts
		}
		Expect(run(7)).To(Equal(run(7)))
		Expect(run(7)).NotTo(Equal(run(8)))
	})

	It("delivers the messages of one link in the order they were sent", func() {
		var order []int
		synctest.Test(suiteT, func(*testing.T) {
			n := NewNetwork(NewSource(3), NetConfig{LatencyMax: 10 * ms})
			a := attach(n, "a")
			attach(n, "b")
			var mu sync.Mutex
			for i := range 100 {
				_, _ = n.roundTrip(a, "b", func(*endpoint) (any, bool) {
					mu.Lock()
					order = append(order, i)
					mu.Unlock()
					return nil, true
				})
			}
			time.Sleep(time.Second)
			n.Close()
		})
		Expect(order).To(HaveLen(100))
		for i := range order {
			Expect(order[i]).To(Equal(i))
		}
	})

	It("loses messages with the configured probability", func() {
		var st NetStats
		synctest.Test(suiteT, func(*testing.T) {
			cfg.Loss = 0.3
			n := NewNetwork(NewSource(5), cfg)
			a := attach(n, "a")
			attach(n, "b")
			for range 1000 {
				out, _ := n.roundTrip(a, "b", named)
				within(out, 10*ms)
			}
			n.Close()
			st = n.Stats()
		})
		Expect(st.Cut).To(BeZero())
		Expect(float64(st.Lost) / float64(st.Sent)).To(BeNumerically("~", 0.3, 0.04))
	})

	When("the network is partitioned", func() {
		It("cuts messages between the groups, also those already on their way, until it heals", func() {
			var across, inside, inFlight, healed bool
			var st NetStats
			synctest.Test(suiteT, func(*testing.T) {
				n := NewNetwork(NewSource(2), NetConfig{LatencyMin: 10 * ms, LatencyMax: 10 * ms})
				a := attach(n, "a")
				attach(n, "b")
				attach(n, "c")
				late, _ := n.roundTrip(a, "b", named)
				time.Sleep(5 * ms)
				n.Partition([][]string{{"a", "c"}})
				_, inFlight = within(late, time.Second)
				out, _ := n.roundTrip(a, "b", named)
				_, across = within(out, time.Second)
				out, _ = n.roundTrip(a, "c", named)
				_, inside = within(out, time.Second)
				n.Heal()
				out, _ = n.roundTrip(a, "b", named)
				_, healed = within(out, time.Second)
				n.Close()
				st = n.Stats()
			})
			Expect(inFlight).To(BeFalse(), "a message on its way when the partition began")
			Expect(across).To(BeFalse(), "a message across the partition")
			Expect(inside).To(BeTrue(), "a message inside a group")
			Expect(healed).To(BeTrue(), "a message after the heal")
			Expect(st.Cut).To(Equal(2))
		})
	})

	When("a node is down", func() {
		It("refuses messages to it after a round trip, as a closed port does", func() {
			var err error
			var took time.Duration
			synctest.Test(suiteT, func(*testing.T) {
				n := NewNetwork(NewSource(4), cfg)
				a := attach(n, "a")
				b := attach(n, "b")
				n.down(b)
				start := time.Now()
				_, err = n.roundTrip(a, "b", named)
				took = time.Since(start)
				n.Close()
			})
			Expect(err).To(MatchError(ErrRefused))
			Expect(took).To(BeNumerically(">=", 2*ms))
		})

		It("drops what a restarted node's previous incarnation was sent", func() {
			var answered bool
			synctest.Test(suiteT, func(*testing.T) {
				n := NewNetwork(NewSource(6), cfg)
				a := attach(n, "a")
				old := attach(n, "b")
				out, _ := n.roundTrip(a, "b", named)
				n.down(old)
				attach(n, "b")
				_, answered = within(out, time.Second)
				n.Close()
			})
			Expect(answered).To(BeFalse())
		})
	})
})
