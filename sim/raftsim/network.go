package raftsim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

var (
	// ErrRefused is wrapped by the error for a message to a node that is
	// down: like a TCP connection refused, it comes back after a round
	// trip, and the message certainly did not arrive.
	ErrRefused = errors.New("raftsim: connection refused")
	// ErrTimeout is wrapped by the error for a call that got no answer in
	// time: the request or its answer was lost, cut by a partition, or is
	// still on its way. The request may have been carried out.
	ErrTimeout = errors.New("raftsim: no answer in time")
)

// NetConfig shapes the simulated network.
type NetConfig struct {
	// One-way latency is drawn uniformly from [LatencyMin, LatencyMax] per
	// message.
	LatencyMin, LatencyMax time.Duration
	// Loss is the probability that a message (a request or an answer) is
	// dropped.
	Loss float64
}

// NetStats counts what the network did with messages.
type NetStats struct {
	Sent, Delivered, Lost, Cut, Refused int
}

// endpoint is one incarnation of a node on the network: a manager between
// a start and a crash, or a client. A message for an endpoint that went
// down is lost even if the node has come back since: the new incarnation
// is a new endpoint, as a restarted process has new connections.
type endpoint struct {
	id   string
	done chan struct{} // closed when the incarnation goes down
	once sync.Once
	// rpcs is raft's consumer channel, api the manager's client API; both
	// nil for a client.
	rpcs chan hraft.RPC
	api  func(req any) any
}

func newEndpoint(id string) *endpoint {
	return &endpoint{id: id, done: make(chan struct{})}
}

func (e *endpoint) down() { e.once.Do(func() { close(e.done) }) }

// Network carries messages between the managers and the clients. Every
// message is delayed by a latency drawn from the run's Source, or lost
// with the configured probability; messages on one direction of one link
// arrive in the order they were sent, as on a TCP connection. A partition
// or a crash cuts a message both when it is sent and when it arrives.
//
// Delays are real timers (time.Sleep in the message's goroutine): inside a
// synctest bubble they run in virtual time.
type Network struct {
	src *Source

	mu    sync.Mutex
	cfg   NetConfig
	ends  map[string]*endpoint // the live incarnation of each node
	names map[string]bool      // every node ever attached
	group map[string]int       // partition group; all 0 when healed
	fifo  map[[2]string]time.Time
	stats NetStats

	// closed ends the messages still on their way; inflight counts their
	// goroutines, which must all end before the bubble can.
	closed   chan struct{}
	inflight sync.WaitGroup
}

// NewNetwork returns a network drawing its decisions from src.
func NewNetwork(src *Source, cfg NetConfig) *Network {
	return &Network{src: src, cfg: cfg, ends: map[string]*endpoint{}, names: map[string]bool{},
		group: map[string]int{}, fifo: map[[2]string]time.Time{}, closed: make(chan struct{})}
}

// Close drops every message still on its way and waits until their
// goroutines have ended. Nothing may be sent after it.
func (n *Network) Close() {
	close(n.closed)
	n.inflight.Wait()
}

// Config is the network's current shape.
func (n *Network) Config() NetConfig {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cfg
}

// SetConfig changes the latency and loss of messages sent from now on.
func (n *Network) SetConfig(cfg NetConfig) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cfg = cfg
}

// Stats counts the messages so far.
func (n *Network) Stats() NetStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// up makes e the live incarnation of its node.
func (n *Network) up(e *endpoint) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ends[e.id] = e
	n.names[e.id] = true
}

// down takes e off the network: messages to and from it are cut, and
// whoever waits on its done channel gives up.
func (n *Network) down(e *endpoint) {
	n.mu.Lock()
	if n.ends[e.id] == e {
		delete(n.ends, e.id)
	}
	n.mu.Unlock()
	e.down()
}

// Partition splits the nodes into groups that cannot reach each other;
// nodes in no group form one more group.
func (n *Network) Partition(groups [][]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id := range n.names {
		n.group[id] = len(groups) + 1
	}
	for i, g := range groups {
		for _, id := range g {
			n.group[id] = i + 1
		}
	}
}

// Heal ends every partition.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.group)
}

// Partitioned reports whether a partition is in place.
func (n *Network) Partitioned() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.group) > 0
}

// String describes the partition, for the fault log.
func (n *Network) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	byGroup := map[int][]string{}
	for id, g := range n.group {
		byGroup[g] = append(byGroup[g], id)
	}
	var parts []string
	for _, g := range slices.Sorted(maps.Keys(byGroup)) {
		ids := byGroup[g]
		slices.Sort(ids)
		parts = append(parts, "["+strings.Join(ids, " ")+"]")
	}
	return strings.Join(parts, " | ")
}

// live reports whether e is still its node's incarnation and on the
// network. Called with n.mu held.
func (n *Network) live(e *endpoint) bool { return e != nil && n.ends[e.id] == e }

// connected reports whether a message can go from a to b. Called with
// n.mu held.
func (n *Network) connected(a, b *endpoint) bool {
	return n.live(a) && n.live(b) && n.group[a.id] == n.group[b.id]
}

// pass decides the fate of a message from a to b sent now: its arrival
// time, or false when it is lost or cut. Called with n.mu held.
func (n *Network) pass(a, b *endpoint) (time.Time, bool) {
	n.stats.Sent++
	if !n.connected(a, b) {
		n.stats.Cut++
		return time.Time{}, false
	}
	if n.src.Chance(n.cfg.Loss) {
		n.stats.Lost++
		return time.Time{}, false
	}
	link := [2]string{a.id, b.id}
	at := time.Now().Add(n.src.Between(n.cfg.LatencyMin, n.cfg.LatencyMax))
	// Strictly after the link's previous message: in a bubble, timers
	// that fire at one instant wake their goroutines in no set order.
	if last := n.fifo[link]; !at.After(last) {
		at = last.Add(time.Nanosecond)
	}
	n.fifo[link] = at
	return at, true
}

// arrived reports whether a message from a to b, now at its arrival time,
// is delivered: the path may have been cut while it was on its way.
func (n *Network) arrived(a, b *endpoint) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.connected(a, b) {
		n.stats.Cut++
		return false
	}
	n.stats.Delivered++
	return true
}

// roundTrip carries a request from the endpoint from to the live
// incarnation of node to, runs serve there, and carries serve's answer
// back: each way delayed, and maybe lost or cut. The answer lands on the
// returned channel, or never. serve may block; it must give up when the
// destination's done channel closes, returning false. A destination that
// is down fails with ErrRefused after a round trip.
func (n *Network) roundTrip(from *endpoint, to string, serve func(dst *endpoint) (any, bool)) (<-chan any, error) {
	out := make(chan any, 1)
	n.mu.Lock()
	dst := n.ends[to]
	if dst == nil {
		n.stats.Sent++
		n.stats.Refused++
		rtt := 2 * n.src.Between(n.cfg.LatencyMin, n.cfg.LatencyMax)
		n.mu.Unlock()
		time.Sleep(rtt)
		return nil, fmt.Errorf("%w: %s is down", ErrRefused, to)
	}
	at, ok := n.pass(from, dst)
	n.mu.Unlock()
	if !ok {
		return out, nil
	}
	n.inflight.Go(func() {
		if !n.sleepUntil(at) || !n.arrived(from, dst) {
			return
		}
		answer, ok := serve(dst)
		if !ok {
			return
		}
		n.mu.Lock()
		back, ok := n.pass(dst, from)
		n.mu.Unlock()
		if !ok {
			return
		}
		if n.sleepUntil(back) && n.arrived(dst, from) {
			out <- answer
		}
	})
	return out, nil
}

// sleepUntil waits until t, or until the network closes (false).
func (n *Network) sleepUntil(t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-n.closed:
		return false
	}
}

func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}
