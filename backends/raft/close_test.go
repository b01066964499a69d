package raft_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	hraft "github.com/hashicorp/raft"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	wraft "github.com/warren-orchestrator/warren/backends/raft"
	"github.com/warren-orchestrator/warren/orchestrator/state"
)

// gatedStore is raft.db whose appends, once the gate is shut, block until
// it is opened again: a disk that stops answering.
type gatedStore struct {
	wraft.LogStore
	mu      sync.Mutex
	gate    chan struct{} // nil while appends pass
	blocked atomic.Bool
}

func (s *gatedStore) shut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
}

func (s *gatedStore) open() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.gate)
	s.gate = nil
}

func (s *gatedStore) StoreLogs(logs []*hraft.Log) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		s.blocked.Store(true)
		<-gate
	}
	return s.LogStore.StoreLogs(logs)
}

var _ = Describe("Node.Close", Label("integ"), func() {
	var (
		n     *wraft.Node
		store *gatedStore
	)
	const apply = 200 * time.Millisecond

	BeforeEach(func() {
		store = &gatedStore{}
		_, trans := hraft.NewInmemTransport("")
		var err error
		n, err = wraft.Open(wraft.Config{
			ID: "m1", DataDir: GinkgoT().TempDir(), Transport: trans,
			Timing: wraft.Timing{Heartbeat: 50 * time.Millisecond, LeaderLease: 50 * time.Millisecond, Apply: apply},
			WrapLogStore: func(s wraft.LogStore) wraft.LogStore {
				store.LogStore = s
				return store
			},
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = n.Close() })
		Expect(n.Bootstrap()).To(Succeed())
		Eventually(n.IsLeader, 5*time.Second, 10*time.Millisecond).Should(BeTrue())
		_, err = n.Apply(secret(0))
		Expect(err).NotTo(HaveOccurred())
	})

	// hashicorp/raft answers no write still in its apply queue when it
	// shuts down: with the leader stuck on its disk, the writes queued
	// behind the stuck one would wait for ever.
	It("makes every write and barrier in flight return, with an outcome unknown", func() {
		store.shut()
		writes := make(chan error, 10)
		for i := range cap(writes) {
			go func() {
				_, err := n.Apply(secret(i + 1))
				writes <- err
			}()
		}
		barrier := make(chan error, 1)
		go func() { barrier <- n.Barrier() }()
		Eventually(store.blocked.Load, 5*time.Second, 5*time.Millisecond).Should(BeTrue())

		closed := make(chan error, 1)
		go func() { closed <- n.Close() }()
		time.Sleep(apply / 4)
		_, err := n.Apply(secret(99))
		Expect(err).To(MatchError(state.ErrClosed), "a write after Close began is refused at once")
		Expect(err).NotTo(MatchError(wraft.ErrOutcomeUnknown), "and it certainly was not sent")

		// Close waits Timing.Apply for the calls in flight, then shuts raft
		// down; raft stops once the stuck append returns.
		time.Sleep(2 * apply)
		store.open()
		Eventually(closed, 5*time.Second).Should(Receive(Succeed()))
		// A goroutine scheduled late (under -race, on a busy machine) may
		// reach Apply only after Close began: refused at once, never sent.
		// The writes raft has, the stuck one at least, are answered
		// outcome unknown.
		unknown := 0
		for range cap(writes) {
			Eventually(writes, time.Second).Should(Receive(&err), "a write is still waiting after Close returned")
			Expect(err).To(Or(MatchError(wraft.ErrOutcomeUnknown), MatchError(state.ErrClosed)))
			if errors.Is(err, wraft.ErrOutcomeUnknown) {
				unknown++
			}
		}
		Expect(unknown).To(BeNumerically(">=", 1), "the write stuck on the disk was in flight")
		Eventually(barrier, time.Second).Should(Receive(&err), "the barrier is still waiting after Close returned")
		Expect(err).To(Or(MatchError(state.ErrClosed), MatchError(wraft.ErrOutcomeUnknown)))
	})

	It("lets the calls in flight finish first when raft can answer them", func() {
		writes := make(chan error, 10)
		for i := range cap(writes) {
			go func() {
				_, err := n.Apply(secret(i + 1))
				writes <- err
			}()
		}
		Expect(n.Close()).To(Succeed())
		Expect(n.Close()).To(Succeed(), "a second Close returns the first one's result")
		for range cap(writes) {
			var err error
			Expect(writes).To(Receive(&err), "Close returned before a write did")
			if err != nil {
				// A write that reached raft after Close began is refused.
				Expect(err).To(MatchError(state.ErrClosed))
				Expect(err).NotTo(MatchError(wraft.ErrOutcomeUnknown))
			}
		}
	})
})
