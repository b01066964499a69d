// Package dispatcher is the manager's side of node liveness: the leader
// keeps each worker's last heartbeat in memory (heartbeats are not written
// to the log) and decides when a node is down or back.
//
// After a leader change the new leader has heard from no one, so every node
// gets a grace period from the moment of the change before it can be
// marked down: a failover never turns into a mass reschedule.
//
// It also decides what a node's volume report changes (volumes.go): which
// volumes are pinned to the node, which of those it made are gone, and
// which recorded sizes to write.
package dispatcher

import (
	"slices"
	"strings"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Config sets the liveness timing.
type Config struct {
	// TTL is how long a node may go without a heartbeat before it is down.
	TTL time.Duration
	// Grace is how long after becoming leader every node has to reach the
	// new leader before it can be marked down. Less than TTL gives up the
	// guarantee above.
	Grace time.Duration
}

// DefaultConfig heartbeats every 5 s (the worker's side) with 3 missed
// heartbeats allowed, as Swarm does.
var DefaultConfig = Config{TTL: 15 * time.Second, Grace: 15 * time.Second}

// Dispatcher tracks heartbeats for one leadership term. Not safe for
// concurrent use; the leader's loop owns it.
type Dispatcher struct {
	cfg         Config
	leaderSince time.Time
	seen        map[string]time.Time
}

// New starts tracking at the moment this manager became leader.
func New(cfg Config, leaderSince time.Time) *Dispatcher {
	return &Dispatcher{cfg: cfg, leaderSince: leaderSince, seen: map[string]time.Time{}}
}

// Heartbeat records that nodeID was heard from at now.
func (d *Dispatcher) Heartbeat(nodeID string, now time.Time) {
	if now.After(d.seen[nodeID]) {
		d.seen[nodeID] = now
	}
}

// deadline is when n is down if not heard from again.
func (d *Dispatcher) deadline(nodeID string) time.Time {
	dl := d.leaderSince.Add(d.cfg.Grace)
	if seen, ok := d.seen[nodeID]; ok && seen.Add(d.cfg.TTL).After(dl) {
		dl = seen.Add(d.cfg.TTL)
	}
	return dl
}

// Check returns the status changes due at now, in node ID order: nodes past
// their deadline that are not down yet, and nodes heard from that are
// marked down or unknown.
func (d *Dispatcher) Check(nodes []*types.Node, now time.Time) []*fsm.SetNodeStatus {
	var out []*fsm.SetNodeStatus
	for _, n := range sortedNodes(nodes) {
		seen, heard := d.seen[n.ID]
		alive := !now.After(d.deadline(n.ID))
		last := n.LastHeartbeat
		if heard {
			last = seen
		}
		switch {
		case !alive && n.Status != types.NodeDown:
			out = append(out, &fsm.SetNodeStatus{NodeID: n.ID, Status: types.NodeDown, LastHeartbeat: last})
		case alive && heard && (n.Status == types.NodeDown || n.Status == types.NodeUnknown):
			out = append(out, &fsm.SetNodeStatus{NodeID: n.ID, Status: types.NodeReady, LastHeartbeat: last})
		}
	}
	return out
}

// Next is the earliest time after now at which Check could mark one of
// nodes down: when to check again if nothing else happens. Zero if never.
func (d *Dispatcher) Next(nodes []*types.Node, now time.Time) time.Time {
	var next time.Time
	for _, n := range nodes {
		if n.Status == types.NodeDown {
			continue
		}
		// Check marks a node down once now is past its deadline.
		dl := d.deadline(n.ID).Add(time.Nanosecond)
		if dl.After(now) && (next.IsZero() || dl.Before(next)) {
			next = dl
		}
	}
	return next
}

func sortedNodes(nodes []*types.Node) []*types.Node {
	out := slices.Clone(nodes)
	slices.SortFunc(out, func(a, b *types.Node) int { return strings.Compare(a.ID, b.ID) })
	return out
}
