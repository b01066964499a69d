package raftsim

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Source is the run's one seeded random source. Every decision the harness
// makes (the fault schedule, each message's delay and loss, each client's
// next operation) is drawn from it. The network and the clients draw from
// many goroutines, so draws are serialised; their order follows Go's
// scheduler, which is why only what is drawn before the cluster starts (the
// fault schedule) replays exactly from the seed.
type Source struct {
	mu sync.Mutex
	r  *rand.Rand
}

// NewSource returns the source of a run with the given seed.
func NewSource(seed uint64) *Source {
	return &Source{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Between draws a duration uniformly from [lo, hi].
func (s *Source) Between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return lo + time.Duration(s.r.Int64N(int64(hi-lo)+1))
}

// Chance reports true with probability p.
func (s *Source) Chance(p float64) bool {
	if p <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.Float64() < p
}

// IntN draws an int from [0, n).
func (s *Source) IntN(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.IntN(n)
}

// Float64 draws from [0, 1).
func (s *Source) Float64() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.Float64()
}
