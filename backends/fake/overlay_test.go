package fake_test

import (
	"errors"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/fake"
	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/overlaytest"
)

var _ = overlaytest.DescribeOverlay("the fake overlay", func() orchestrator.Overlay { return fake.NewOverlay() })

var _ = Describe("Overlay", func() {
	var (
		ov       *fake.Overlay
		injected = errors.New("device busy")
	)
	BeforeEach(func() {
		ov = fake.NewOverlay()
		Expect(ov.SetPeers([]orchestrator.Peer{overlaytest.Peer(1)})).To(Succeed())
	})

	When("told to fail the next SetPeers", func() {
		JustBeforeEach(func() { ov.FailNext(injected) })

		It("fails it with the injected error and keeps the peers it had", func() {
			err := ov.SetPeers([]orchestrator.Peer{overlaytest.Peer(2)})
			Expect(errors.Is(err, injected)).To(BeTrue(), "%v", err)
			Expect(ov.Peers()).To(Equal([]orchestrator.Peer{overlaytest.Peer(1)}))
		})

		It("fails that one call only", func() {
			Expect(ov.SetPeers(nil)).NotTo(Succeed())
			Expect(ov.SetPeers([]orchestrator.Peer{overlaytest.Peer(2)})).To(Succeed())
			Expect(ov.Peers()).To(Equal([]orchestrator.Peer{overlaytest.Peer(2)}))
		})
	})
})
