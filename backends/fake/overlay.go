package fake

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/warren-orchestrator/warren/orchestrator"
)

// Overlay is an orchestrator.Overlay that connects nothing: it keeps the
// peer set it was given, checked as the WireGuard overlay checks it, so the
// simulator can assert on it. It is safe for concurrent use.
type Overlay struct {
	mu       sync.Mutex
	peers    []orchestrator.Peer // sorted by NodeID
	failNext error
}

var _ orchestrator.Overlay = (*Overlay)(nil)

// NewOverlay returns an Overlay with no peers.
func NewOverlay() *Overlay { return &Overlay{} }

// SetPeers replaces the peer set with peers. It refuses a set with an
// unnamed node, a missing or unspecified overlay IP, or a node ID, overlay
// IP or public key given twice, and then keeps the peers it had: WireGuard
// routes by overlay IP and keys peers by public key, so a duplicate would
// silently send one node's traffic to another.
func (o *Overlay) SetPeers(peers []orchestrator.Peer) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.failNext; err != nil {
		o.failNext = nil
		return fmt.Errorf("fake overlay: injected failure: %w", err)
	}
	if err := checkPeers(peers); err != nil {
		return err
	}
	sorted := slices.Clone(peers)
	slices.SortFunc(sorted, func(a, b orchestrator.Peer) int { return strings.Compare(a.NodeID, b.NodeID) })
	o.peers = sorted
	return nil
}

// Peers returns a copy of the peer set, ordered by node ID.
func (o *Overlay) Peers() ([]orchestrator.Peer, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.peers), nil
}

// FailNext makes the next SetPeers fail with an error wrapping err, and
// change nothing: the simulator's fault for a device that refuses its
// configuration.
func (o *Overlay) FailNext(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failNext = err
}

// checkPeers reports every problem with a peer set at once, so that one
// fix-and-retry is enough.
func checkPeers(peers []orchestrator.Peer) error {
	var problems []string
	nodes := map[string]int{}
	ips := map[netip.Addr]int{}
	keys := map[string]int{}
	for i, p := range peers {
		who := fmt.Sprintf("peer %d (node %q)", i, p.NodeID)
		if p.NodeID == "" {
			problems = append(problems, fmt.Sprintf("%s has no node ID: name every peer", who))
		} else if j, dup := nodes[p.NodeID]; dup {
			problems = append(problems, fmt.Sprintf("%s: node %s is already peer %d: give each node once", who, p.NodeID, j))
		} else {
			nodes[p.NodeID] = i
		}
		ip := p.OverlayIP
		switch {
		case !ip.IsValid():
			problems = append(problems, fmt.Sprintf("%s has no overlay IP: assign the node one", who))
		case ip.IsUnspecified():
			problems = append(problems, fmt.Sprintf("%s has the unspecified overlay IP %s: assign the node a real address", who, ip))
		default:
			if j, dup := ips[ip]; dup {
				problems = append(problems, fmt.Sprintf("%s: overlay IP %s is already peer %d's: give each node its own address", who, ip, j))
			} else {
				ips[ip] = i
			}
		}
		if p.PublicKey != "" {
			if j, dup := keys[p.PublicKey]; dup {
				problems = append(problems, fmt.Sprintf("%s: public key %s is already peer %d's: each node has its own key", who, p.PublicKey, j))
			} else {
				keys[p.PublicKey] = i
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("fake overlay: invalid peers: " + strings.Join(problems, "; "))
}
