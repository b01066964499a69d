// Package overlaytest is the contract every orchestrator.Overlay must meet,
// as a Ginkgo suite: the fake Overlay runs it, and so will the WireGuard
// Overlay, so that the simulator's overlay refuses what production refuses.
package overlaytest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/netip"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/warren-orchestrator/warren/orchestrator"
)

// Peer returns a valid peer for node n (1-254): node ID "node-<n>", a
// WireGuard-shaped public key, an endpoint in TEST-NET-1 and the overlay IP
// 10.10.0.<n>, all unique to n.
func Peer(n int) orchestrator.Peer {
	return orchestrator.Peer{
		NodeID:    fmt.Sprintf("node-%d", n),
		Endpoint:  fmt.Sprintf("192.0.2.%d:51820", n),
		PublicKey: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(n)}, 32)),
		OverlayIP: netip.AddrFrom4([4]byte{10, 10, 0, byte(n)}),
	}
}

// DescribeOverlay registers the contract specs for the overlay newOverlay
// makes, called once per spec in a BeforeEach. args are passed on to
// Describe: decorators such as Label("integ").
func DescribeOverlay(name string, newOverlay func() orchestrator.Overlay, args ...any) bool {
	return Describe("Overlay contract on "+name, append(args, func() {
		var ov orchestrator.Overlay
		BeforeEach(func() { ov = newOverlay() })

		peers := func() []orchestrator.Peer {
			GinkgoHelper()
			ps, err := ov.Peers()
			Expect(err).NotTo(HaveOccurred())
			return ps
		}
		with := func(p orchestrator.Peer, change func(p *orchestrator.Peer)) orchestrator.Peer {
			change(&p)
			return p
		}

		When("it is new", func() {
			It("has no peers", func() {
				Expect(peers()).To(BeEmpty())
			})
		})

		When("peers are set", func() {
			JustBeforeEach(func() {
				Expect(ov.SetPeers([]orchestrator.Peer{Peer(3), Peer(1), Peer(2)})).To(Succeed())
			})

			It("has exactly those peers, ordered by node ID", func() {
				Expect(peers()).To(Equal([]orchestrator.Peer{Peer(1), Peer(2), Peer(3)}))
			})

			It("replaces the whole set on the next call: drops, changes and adds", func() {
				moved := with(Peer(2), func(p *orchestrator.Peer) { p.Endpoint = "198.51.100.2:51820" })
				Expect(ov.SetPeers([]orchestrator.Peer{Peer(4), moved})).To(Succeed())
				Expect(peers()).To(Equal([]orchestrator.Peer{moved, Peer(4)}))
			})

			It("has no peers after an empty set", func() {
				Expect(ov.SetPeers(nil)).To(Succeed())
				Expect(peers()).To(BeEmpty())
			})

			It("is changed neither by the caller's slice nor by the one it returned", func() {
				given := []orchestrator.Peer{Peer(5), Peer(4)}
				Expect(ov.SetPeers(given)).To(Succeed())
				Expect(given[0]).To(Equal(Peer(5)), "SetPeers reordered the caller's slice")
				given[0].Endpoint = "203.0.113.9:1"
				got := peers()
				got[0].NodeID = "node-x"
				Expect(peers()).To(Equal([]orchestrator.Peer{Peer(4), Peer(5)}))
			})
		})

		When("the peer set is invalid", func() {
			DescribeTable("refuses it, names the problem and keeps the peers it had",
				func(bad []orchestrator.Peer, mention string) {
					Expect(ov.SetPeers([]orchestrator.Peer{Peer(1), Peer(2)})).To(Succeed())
					err := ov.SetPeers(bad)
					Expect(err).To(MatchError(ContainSubstring(mention)))
					Expect(peers()).To(Equal([]orchestrator.Peer{Peer(1), Peer(2)}))
				},
				Entry("a node given twice", []orchestrator.Peer{Peer(3),
					with(Peer(4), func(p *orchestrator.Peer) { p.NodeID = "node-3" })}, "node-3"),
				Entry("an overlay IP given twice", []orchestrator.Peer{Peer(3),
					with(Peer(4), func(p *orchestrator.Peer) { p.OverlayIP = Peer(3).OverlayIP })}, "10.10.0.3"),
				Entry("a public key given twice", []orchestrator.Peer{Peer(3),
					with(Peer(4), func(p *orchestrator.Peer) { p.PublicKey = Peer(3).PublicKey })}, Peer(3).PublicKey),
				Entry("a peer without an overlay IP", []orchestrator.Peer{Peer(3),
					with(Peer(4), func(p *orchestrator.Peer) { p.OverlayIP = netip.Addr{} })}, "node-4"),
				Entry("an unspecified overlay IP", []orchestrator.Peer{
					with(Peer(3), func(p *orchestrator.Peer) { p.OverlayIP = netip.IPv4Unspecified() })}, "0.0.0.0"),
				Entry("a peer without a node ID", []orchestrator.Peer{
					with(Peer(3), func(p *orchestrator.Peer) { p.NodeID = "" })}, "node ID"),
			)

			It("reports every problem at once, so one fix is enough", func() {
				err := ov.SetPeers([]orchestrator.Peer{
					Peer(3),
					with(Peer(4), func(p *orchestrator.Peer) { p.NodeID = "node-3" }),
					with(Peer(5), func(p *orchestrator.Peer) { p.OverlayIP = Peer(3).OverlayIP }),
				})
				Expect(err).To(MatchError(And(ContainSubstring("node-3"), ContainSubstring("10.10.0.3"))))
				Expect(peers()).To(BeEmpty())
			})
		})
	})...)
}
