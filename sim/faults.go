package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// The faults a scenario can inject. Each is recorded on the timeline.

func (c *Cluster) manager(id string) *manager {
	for _, m := range c.managers {
		if m.id == id {
			return m
		}
	}
	return nil
}

// node resolves a scenario's node name: a node ID, "leader", or
// "volume:NAME", the worker local volume NAME is pinned to now.
func (c *Cluster) node(name string) (string, error) {
	if vol, ok := strings.CutPrefix(name, "volume:"); ok {
		if l := c.volumes[vol]; l != nil && l.exists && l.node != "" {
			return l.node, nil
		}
		return "", fmt.Errorf("no node %q: volume %s is not pinned to a node now", name, vol)
	}
	if name == "leader" {
		l := c.Leader()
		if l == nil {
			return "", fmt.Errorf("no leader to target")
		}
		return l.id, nil
	}
	if c.manager(name) != nil || c.worker(name) != nil || name == c.client.id {
		return name, nil
	}
	return "", fmt.Errorf("no node %q: use manager-N, worker-N, leader, volume:NAME or client", name)
}

// Crash stops a node (manager or worker); restartAfter > 0 boots it again
// then.
func (c *Cluster) Crash(name string, restartAfter time.Duration) error {
	id, err := c.node(name)
	if err != nil {
		return err
	}
	c.eng.Tracef("fault crash %s", id)
	c.event(id, "crashed")
	c.net.setDown(id, true)
	if m := c.manager(id); m != nil {
		m.crash()
	} else {
		w := c.worker(id)
		w.crash()
		for task, on := range c.running {
			if on == id {
				delete(c.running, task)
			}
		}
	}
	c.connectivity()
	span := FaultSpan{Kind: "crash", Target: id, From: c.eng.Elapsed()}
	if restartAfter > 0 {
		span.To = c.eng.Elapsed() + restartAfter
		c.eng.After(restartAfter, func() { c.Restart(id) })
	}
	c.tl.Faults = append(c.tl.Faults, span)
	return nil
}

// Restart boots a crashed node.
func (c *Cluster) Restart(id string) {
	c.eng.Tracef("fault restart %s", id)
	c.event(id, "restarted")
	c.net.setDown(id, false)
	if m := c.manager(id); m != nil {
		if !m.raft.alive {
			m.boot()
		}
	} else if w := c.worker(id); w != nil && !w.alive {
		w.boot()
	}
	c.connectivity()
}

// Partition cuts the network into groups; nodes named in no group form one
// more. A group may name "leader".
func (c *Cluster) Partition(groups [][]string, healAfter time.Duration) error {
	var resolved [][]string
	for _, g := range groups {
		var ids []string
		for _, name := range g {
			id, err := c.node(name)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		slices.Sort(ids)
		resolved = append(resolved, ids)
	}
	var names []string
	for _, g := range resolved {
		names = append(names, "["+strings.Join(g, " ")+"]")
	}
	c.eng.Tracef("fault partition %s", strings.Join(names, " "))
	c.event("", "partition %s", strings.Join(names, " | "))
	c.net.Partition(resolved)
	c.connectivity()
	span := FaultSpan{Kind: "partition", Target: strings.Join(names, " "), From: c.eng.Elapsed()}
	if healAfter > 0 {
		span.To = c.eng.Elapsed() + healAfter
		c.eng.After(healAfter, c.Heal)
	}
	c.tl.Faults = append(c.tl.Faults, span)
	return nil
}

// Heal ends every partition.
func (c *Cluster) Heal() {
	if !c.net.Partitioned() {
		return
	}
	c.eng.Tracef("fault heal")
	c.event("", "network healed")
	c.net.Heal()
	c.connectivity()
}

// StallDisk makes a node's disk complete no write for span.
func (c *Cluster) StallDisk(name string, span time.Duration) error {
	id, err := c.node(name)
	if err != nil {
		return err
	}
	m := c.manager(id)
	if m == nil {
		return fmt.Errorf("disk stall on %s: only managers have a simulated disk", id)
	}
	c.eng.Tracef("fault disk-stall %s %v", id, span)
	m.raft.disk.Stall(span)
	c.tl.Faults = append(c.tl.Faults, FaultSpan{Kind: "disk-stall", Target: id, From: c.eng.Elapsed(), To: c.eng.Elapsed() + span})
	return nil
}

// CrashTask makes one running container on a worker exit with a failure.
func (c *Cluster) CrashTask(name string) error {
	id, err := c.node(name)
	if err != nil {
		return err
	}
	w := c.worker(id)
	if w == nil || !w.alive {
		return nil
	}
	cs, _ := w.rt.Containers()
	for _, ct := range cs {
		if ct.State == types.ContainerRunning {
			c.eng.Tracef("fault crash-task %s on %s", ct.TaskID, id)
			c.tl.Faults = append(c.tl.Faults, FaultSpan{Kind: "crash-task", Target: id, From: c.eng.Elapsed()})
			return w.rt.Crash(ct.TaskID, 1)
		}
	}
	return nil
}

// Unhealthy makes the containers a worker starts during span fail their
// health checks once they run (the fake runtime's Unhealthy knob): a bad
// image or a broken dependency. Those already running keep their health.
func (c *Cluster) Unhealthy(name string, span time.Duration) error {
	id, err := c.node(name)
	if err != nil {
		return err
	}
	w := c.worker(id)
	if w == nil {
		return fmt.Errorf("unhealthy %s: only workers run containers", id)
	}
	c.eng.Tracef("fault unhealthy %s %v", id, span)
	c.event(id, "starts unhealthy containers for %v", span)
	w.sickUntil = max(w.sickUntil, c.eng.Elapsed()+span)
	if w.alive {
		w.rt.SetKnobs(w.knobs())
	}
	c.eng.After(span, func() {
		if w.alive {
			w.rt.SetKnobs(w.knobs())
		}
	})
	c.tl.Faults = append(c.tl.Faults, FaultSpan{Kind: "unhealthy", Target: id, From: c.eng.Elapsed(), To: c.eng.Elapsed() + span})
	return nil
}

// Load makes the client write rate times a second for span.
func (c *Cluster) Load(rate int, span time.Duration) { c.client.load(rate, span) }
