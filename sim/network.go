package sim

import "time"

// NetConfig shapes the simulated network.
type NetConfig struct {
	// One-way latency is drawn uniformly from [LatencyMin, LatencyMax].
	LatencyMin, LatencyMax time.Duration
	// Loss is the probability that a message is dropped.
	Loss float64
}

// Network delivers messages between nodes with latency and loss, and cuts
// them by partitions and crashes. A message in flight when its path is cut
// is lost.
type Network struct {
	eng   *Engine
	cfg   NetConfig
	group map[string]int // partition group of each node; all 0 when healed
	down  map[string]bool
	nodes map[string]func(from string, msg any)
}

func newNetwork(eng *Engine, cfg NetConfig) *Network {
	return &Network{eng: eng, cfg: cfg, group: map[string]int{}, down: map[string]bool{}, nodes: map[string]func(string, any){}}
}

// attach registers a node's message handler.
func (n *Network) attach(id string, recv func(from string, msg any)) { n.nodes[id] = recv }

// reachable reports whether a message can go from a to b now.
func (n *Network) reachable(a, b string) bool {
	return !n.down[a] && !n.down[b] && n.group[a] == n.group[b]
}

// Send delivers msg from one node to another after a random latency,
// unless it is lost or the path is cut before it arrives.
func (n *Network) Send(from, to string, msg any) {
	if !n.reachable(from, to) || n.eng.Chance(n.cfg.Loss) {
		return
	}
	n.eng.After(n.eng.Between(n.cfg.LatencyMin, n.cfg.LatencyMax), func() {
		if !n.reachable(from, to) {
			return
		}
		n.nodes[to](from, msg)
	})
}

// Partition splits the nodes into groups that cannot reach each other.
// Nodes in no group form one more group of their own.
func (n *Network) Partition(groups [][]string) {
	for id := range n.nodes {
		n.group[id] = len(groups) + 1
	}
	for i, g := range groups {
		for _, id := range g {
			n.group[id] = i + 1
		}
	}
}

// Heal removes every partition.
func (n *Network) Heal() {
	for id := range n.group {
		n.group[id] = 0
	}
}

// Partitioned reports whether any partition is in place.
func (n *Network) Partitioned() bool {
	for _, g := range n.group {
		if g != 0 {
			return true
		}
	}
	return false
}

// setDown marks a node crashed (true) or back (false).
func (n *Network) setDown(id string, down bool) { n.down[id] = down }

// Disk is a node's disk: syncs complete in order, each after a random
// latency, and not before a stall ends.
type Disk struct {
	eng        *Engine
	min, max   time.Duration
	busyUntil  time.Duration
	stallUntil time.Duration
}

// DiskConfig shapes the simulated disks: fsync latency is drawn uniformly
// from [FsyncMin, FsyncMax].
type DiskConfig struct{ FsyncMin, FsyncMax time.Duration }

func newDisk(eng *Engine, cfg DiskConfig) *Disk {
	return &Disk{eng: eng, min: cfg.FsyncMin, max: cfg.FsyncMax}
}

// Sync runs done once a write issued now is durable.
func (d *Disk) Sync(done func()) {
	start := max(d.eng.Elapsed(), d.busyUntil, d.stallUntil)
	d.busyUntil = start + d.eng.Between(d.min, d.max)
	d.eng.After(d.busyUntil-d.eng.Elapsed(), done)
}

// Then runs done once the writes issued before it are durable, without a
// write of its own: messages that change nothing durable keep their order
// behind those that do.
func (d *Disk) Then(done func()) {
	start := max(d.eng.Elapsed(), d.busyUntil, d.stallUntil)
	d.eng.After(start-d.eng.Elapsed(), done)
}

// Stall makes the disk complete nothing until span has passed.
func (d *Disk) Stall(span time.Duration) {
	d.stallUntil = max(d.stallUntil, d.eng.Elapsed()+span)
}
