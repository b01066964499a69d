package scheduler

import (
	"fmt"
	"math"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// demand is what one task takes from the node it runs on.
type demand struct {
	// cpuMilli is in thousandths of a core: summing float64 reservations
	// drifts (ten tasks of 0.1 add up to more than 1), which would refuse a
	// task that fits exactly.
	cpuMilli    int64
	memoryBytes int64
	ports       []hostPort // node-local host ports, in the task's order
}

// hostPort is a port published on the node itself.
type hostPort struct {
	port  int
	proto types.Protocol
}

func (p hostPort) String() string { return fmt.Sprintf("%d/%s", p.port, p.proto) }

// demandOf reads the task record rather than its service: it is the record
// the runtime starts and the one later calls account for as an existing task,
// so a task is counted the same before and after it is placed.
func demandOf(t *types.Container) demand {
	var d demand
	if r := t.Resources; r != nil {
		d.cpuMilli = int64(math.Round(r.CPUReservation * 1000))
		d.memoryBytes = r.MemoryReservation
	}
	for _, p := range t.Ports {
		// Ingress ports are served by every node's routing mesh and take
		// no port of the task's node; host mode, and for now an unset
		// mode, bind the port on the node itself.
		if p == nil || p.HostPort == 0 || (p.PublishMode != types.PublishHost && p.PublishMode != "") {
			continue
		}
		d.ports = append(d.ports, hostPort{port: p.HostPort, proto: p.Protocol})
	}
	return d
}

func parseConstraints(exprs []string) ([]types.Constraint, error) {
	cs := make([]types.Constraint, 0, len(exprs))
	for _, e := range exprs {
		c, err := types.ParseConstraint(e)
		if err != nil {
			return nil, fmt.Errorf("the service has an invalid constraint, so no node can be chosen: %w", err)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// filter is one stage of the pipeline; the order of the constants is the
// order nodes are checked in and the order reasons list them in.
type filter int

const (
	filterReady filter = iota
	filterActive
	filterConstraint
	filterCPU
	filterMemory
	filterHostPort
)

// rejection is why the first failing filter removed one node.
type rejection struct {
	filter filter
	index  int    // which constraint or port, so reasons keep the service's order
	what   string // the node's status or availability, the constraint, the port
	need   int64  // resource filters: the task's reservation
	free   int64  // resource filters: what the node has left, never negative
}

// check runs the filters on node n for a task with demand d and returns the
// first that refuses it, or nil when n can take the task.
func (s *state) check(n *types.Node, constraints []types.Constraint, d demand) *rejection {
	if n.Status != types.NodeReady {
		return &rejection{filter: filterReady, what: string(n.Status)}
	}
	if n.Availability != types.NodeActive {
		return &rejection{filter: filterActive, what: string(n.Availability)}
	}
	for i, c := range constraints {
		if !c.Matches(n) {
			return &rejection{filter: filterConstraint, index: i, what: c.String()}
		}
	}
	u := s.usage[n.ID]
	// A node that reports no resources has no capacity to check against,
	// so only a task that reserves nothing may go there.
	var cpuMilli, memoryBytes int64
	if r := n.Resources; r != nil {
		cpuMilli, memoryBytes = int64(r.CPUCores)*1000, r.MemoryBytes
	}
	if free := max(cpuMilli-u.cpuMilli, 0); d.cpuMilli > free {
		return &rejection{filter: filterCPU, need: d.cpuMilli, free: free}
	}
	if free := max(memoryBytes-u.memoryBytes, 0); d.memoryBytes > free {
		return &rejection{filter: filterMemory, need: d.memoryBytes, free: free}
	}
	for i, p := range d.ports {
		if u.ports[p] {
			return &rejection{filter: filterHostPort, index: i, what: p.String()}
		}
	}
	return nil
}

// phrase says why one named node was refused: "node n1 " + phrase.
func (r *rejection) phrase() string {
	switch r.filter {
	case filterReady:
		if r.what == "" {
			return "is not ready"
		}
		return "is " + r.what
	case filterActive:
		switch types.NodeAvailability(r.what) {
		case types.NodeDrain:
			return "is drained"
		case types.NodePause:
			return "is paused"
		}
		return "is not active"
	case filterConstraint:
		return "does not match " + r.what
	case filterCPU:
		return fmt.Sprintf("has insufficient CPU (needs %s, free %s)", formatCores(r.need), formatCores(r.free))
	case filterMemory:
		return fmt.Sprintf("has insufficient memory (needs %s, free %s)", formatBytes(r.need), formatBytes(r.free))
	case filterHostPort:
		return "has host port " + r.what + " in use"
	}
	return "cannot take the task"
}
