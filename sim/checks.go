package sim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// ErrLiveness is wrapped by the errors of runs that did not converge.
var ErrLiveness = errors.New("sim: liveness")

// Converged reports nil once the cluster is as its services want: a
// leader, every replicated service with exactly its replicas running on
// ready nodes, every global service running once on each ready, active node
// that matches it, no task meant to run failing its health check, the
// workers' runtimes agreeing, every running task holding the secrets it
// uses that still exist, and no container left with a deleted volume.
func (c *Cluster) Converged() error {
	l := c.Leader()
	if l == nil {
		return errors.New("no leader")
	}
	svcs, err := l.store.ListServices()
	if err != nil {
		return err
	}
	nodes, err := l.store.ListNodes()
	if err != nil {
		return err
	}
	ready := map[string]*types.Node{}
	for _, n := range nodes {
		if n.Status == types.NodeReady {
			ready[n.ID] = n
		}
	}
	for _, s := range svcs {
		tasks, err := l.store.ListContainersByService(s.ID)
		if err != nil {
			return err
		}
		running := map[string]int{}
		n := 0
		for _, t := range tasks {
			if t.DesiredState != types.ContainerRunning || t.ActualState != types.ContainerRunning || ready[t.NodeID] == nil {
				continue
			}
			w := c.worker(t.NodeID)
			if w == nil || !w.alive || !w.runs(t.ID) {
				return fmt.Errorf("service %s: task %s is running on %s by the managers' record, but not on the node", s.Name, t.ID, t.NodeID)
			}
			if t.HealthStatus == types.HealthUnhealthy || w.health(t.ID) == types.HealthUnhealthy {
				return fmt.Errorf("service %s: task %s on %s is unhealthy", s.Name, t.ID, t.NodeID)
			}
			if err := c.missingSecret(l, w, t); err != nil {
				return err
			}
			running[t.NodeID]++
			n++
		}
		switch s.Mode {
		case types.ModeReplicated:
			if n != s.Replicas {
				return fmt.Errorf("service %s: %d of %d replicas running", s.Name, n, s.Replicas)
			}
		case types.ModeGlobal:
			for _, id := range slices.Sorted(maps.Keys(ready)) {
				node := ready[id]
				if node.Availability == types.NodeActive && matches(s, node) && running[id] != 1 {
					return fmt.Errorf("service %s: %d tasks on %s, want 1", s.Name, running[id], id)
				}
			}
		}
	}
	return c.staleVolume()
}

func matches(s *types.Service, n *types.Node) bool {
	for _, expr := range s.Constraints {
		c, err := types.ParseConstraint(expr)
		if err != nil || !c.Matches(n) {
			return false
		}
	}
	return true
}

// AwaitConverged runs the simulation until Converged holds, for at most
// bound; an error wraps ErrLiveness and says what was still missing.
func (c *Cluster) AwaitConverged(bound time.Duration) error {
	deadline := c.eng.Elapsed() + bound
	var last error
	for {
		if last = c.Converged(); last == nil {
			return nil
		}
		if c.eng.Elapsed() >= deadline {
			return fmt.Errorf("%w: not converged %v after the faults healed: %v", ErrLiveness, bound, last)
		}
		if err := c.Run(min(deadline, c.eng.Elapsed()+100*time.Millisecond)); err != nil {
			return err
		}
	}
}

// CheckAcknowledged verifies at the end of a run that every acknowledged
// write is in the committed log, at the index it was acknowledged at.
func (c *Cluster) CheckAcknowledged() error {
	ids := make([]uint64, 0, len(c.acked))
	for id := range c.acked {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		idx := c.acked[id]
		if e, ok := c.committed[idx]; !ok || e.Write != id {
			return &Violation{Invariant: "no acknowledged write is lost", At: c.eng.Elapsed(),
				Detail: fmt.Sprintf("write %d acknowledged at index %d is not committed there", id, idx)}
		}
	}
	return nil
}
