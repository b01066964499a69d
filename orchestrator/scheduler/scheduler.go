package scheduler

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Cluster is what placement looks at: a read-only snapshot.
type Cluster struct {
	Nodes []*types.Node
	// Tasks are every task that holds resources or counts for spread:
	// DesiredState running (pending or running), with NodeID set. Tasks with
	// no NodeID, or on a node not in Nodes, count nowhere.
	Tasks   []*types.Container
	Volumes []*types.Volume
}

// Placement is the decision for one task.
type Placement struct {
	TaskID string
	NodeID string // "" when the task cannot be placed
	Reason string // why not, for a user: set when NodeID == ""
	// PinVolumes are the volumes the placement pins to NodeID: local
	// volumes of the service that did not exist yet or had no node (lazy
	// creation). The caller commits them in the same command as the task,
	// so a task never runs with a volume that is not recorded on its node.
	PinVolumes []*types.Volume
}

// Place decides a node for each of tasks, all of service svc, and returns one
// Placement per task, in the order of tasks.
//
// Tasks are placed in the order given, not sorted: the caller owns priority
// (which replica to place first when capacity runs short) and already holds
// its tasks in a deterministic order. Each task placed counts, for the tasks
// after it, as load, reservations, host ports and volume pins. A task whose
// NodeID is set (global services pre-assign their node) is only checked
// against that node. Tasks passed here that also appear in c.Tasks count
// only as the task being placed, so a task being moved off a node does not
// hold resources there, and a stored pre-assigned task does not collide with
// itself. Reservations and host ports are read from each task record, the
// constraints and volume mounts from svc. Place mutates none of its inputs.
func Place(c Cluster, svc *types.Service, tasks []*types.Container) []Placement {
	placing := make(map[string]bool, len(tasks))
	for _, t := range tasks {
		placing[t.ID] = true
	}
	s := newState(c, svc.ID, placing)
	constraints, err := parseConstraints(svc.Constraints)

	out := make([]Placement, len(tasks))
	for i, t := range tasks {
		out[i].TaskID = t.ID
		if err != nil {
			// The service is validated before it gets here; if it was not,
			// placing its tasks anywhere would ignore what the user asked.
			out[i].Reason = err.Error()
			continue
		}
		d := demandOf(t)
		nodeID, reason := s.choose(t, svc.Volumes, constraints, d)
		if nodeID == "" {
			out[i].Reason = reason
			continue
		}
		out[i].NodeID = nodeID
		out[i].PinVolumes = s.commit(nodeID, t, svc.Volumes, d)
	}
	return out
}

// state is the cluster as placement sees it during one call: the snapshot
// plus the tasks placed and the volumes pinned so far, kept apart from the
// inputs so that later tasks account for earlier ones without mutating them.
type state struct {
	nodes   []*types.Node // sorted by ID, so reasons do not depend on input order
	byID    map[string]*types.Node
	usage   map[string]*nodeUsage
	volumes map[string]*types.Volume // by name, with this call's pins applied
}

// nodeUsage is what the tasks on one node hold.
type nodeUsage struct {
	cpuMilli     int64
	memoryBytes  int64
	ports        map[hostPort]bool
	tasks        int // all services
	serviceTasks int // the service being placed
}

func newState(c Cluster, svcID string, placing map[string]bool) *state {
	s := &state{
		byID:    make(map[string]*types.Node, len(c.Nodes)),
		usage:   make(map[string]*nodeUsage, len(c.Nodes)),
		volumes: make(map[string]*types.Volume, len(c.Volumes)),
	}
	for _, n := range c.Nodes {
		if n == nil {
			continue
		}
		if _, dup := s.byID[n.ID]; dup {
			continue
		}
		s.nodes = append(s.nodes, n)
		s.byID[n.ID] = n
		s.usage[n.ID] = &nodeUsage{ports: map[hostPort]bool{}}
	}
	slices.SortFunc(s.nodes, func(a, b *types.Node) int { return cmp.Compare(a.ID, b.ID) })
	for _, t := range c.Tasks {
		if t == nil || t.NodeID == "" || placing[t.ID] {
			continue
		}
		if u := s.usage[t.NodeID]; u != nil {
			u.add(demandOf(t), t.ServiceID == svcID)
		}
	}
	for _, v := range c.Volumes {
		// Names are unique in the store; should a snapshot hold two, the
		// lowest ID wins so that the input order cannot change the outcome.
		if v == nil {
			continue
		}
		if old, ok := s.volumes[v.Name]; ok && old.ID <= v.ID {
			continue
		}
		s.volumes[v.Name] = v
	}
	return s
}

func (u *nodeUsage) add(d demand, sameService bool) {
	u.cpuMilli += d.cpuMilli
	u.memoryBytes += d.memoryBytes
	for _, p := range d.ports {
		u.ports[p] = true
	}
	u.tasks++
	if sameService {
		u.serviceTasks++
	}
}

// choose returns the node for task t, or "" and the reason it has none.
func (s *state) choose(t *types.Container, mounts []*types.VolumeMount, constraints []types.Constraint, d demand) (nodeID, reason string) {
	aff := s.affinity(mounts)
	if aff.conflict != "" {
		return "", aff.conflict
	}
	if t.NodeID != "" {
		n := s.byID[t.NodeID]
		switch {
		case n == nil:
			return "", fmt.Sprintf("node %s is not in the cluster", t.NodeID)
		case aff.nodeID != "" && aff.nodeID != t.NodeID:
			return "", fmt.Sprintf("volume %s is on node %s, not on %s", aff.volume, aff.nodeID, t.NodeID)
		}
		if r := s.check(n, constraints, d); r != nil {
			return "", fmt.Sprintf("node %s %s", n.ID, r.phrase())
		}
		return n.ID, ""
	}
	if len(s.nodes) == 0 {
		return "", "no nodes in the cluster"
	}
	if aff.nodeID != "" {
		// The volume's data is on one node: that node or nothing. Saying
		// so names the actual obstacle, where counting the other nodes as
		// filtered would not.
		n := s.byID[aff.nodeID]
		if n == nil {
			return "", fmt.Sprintf("volume %s is on node %s, which is not in the cluster", aff.volume, aff.nodeID)
		}
		if r := s.check(n, constraints, d); r != nil {
			return "", fmt.Sprintf("volume %s is on node %s, which %s", aff.volume, n.ID, r.phrase())
		}
		return n.ID, ""
	}

	var best *types.Node
	var bestRank rank
	var rejected []*rejection
	for _, n := range s.nodes {
		if r := s.check(n, constraints, d); r != nil {
			rejected = append(rejected, r)
			continue
		}
		r := s.rankOf(t.ID, n)
		if best == nil || r.less(bestRank) {
			best, bestRank = n, r
		}
	}
	if best == nil {
		return "", aggregate(len(s.nodes), rejected)
	}
	return best.ID, ""
}

// commit records task t on nodeID for the tasks after it and returns the
// volumes its placement pins there.
func (s *state) commit(nodeID string, t *types.Container, mounts []*types.VolumeMount, d demand) []*types.Volume {
	s.usage[nodeID].add(d, true)
	pins := s.pin(mounts, nodeID, t)
	for _, v := range pins {
		s.volumes[v.Name] = v
	}
	return pins
}

// rank orders the nodes that pass the filters; lower is better.
type rank struct {
	serviceTasks int // spread the service first, so one node failing loses few of its replicas
	tasks        int // then spread the cluster
	tie          uint64
	nodeID       string // a hash collision must not depend on input order
}

func (s *state) rankOf(taskID string, n *types.Node) rank {
	u := s.usage[n.ID]
	return rank{serviceTasks: u.serviceTasks, tasks: u.tasks, tie: tieBreak(taskID, n.ID), nodeID: n.ID}
}

func (a rank) less(b rank) bool {
	return cmp.Or(
		cmp.Compare(a.serviceTasks, b.serviceTasks),
		cmp.Compare(a.tasks, b.tasks),
		cmp.Compare(a.tie, b.tie),
		cmp.Compare(a.nodeID, b.nodeID),
	) < 0
}

// tieBreak derives a pseudo-random order of equal nodes from the task and
// node IDs (FNV-1a 64), as Nomad seeds its shuffle from the evaluation ID:
// replays agree, and different tasks do not all pick the same first node.
func tieBreak(taskID, nodeID string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(taskID))
	h.Write([]byte{0})
	h.Write([]byte(nodeID))
	return h.Sum64()
}
