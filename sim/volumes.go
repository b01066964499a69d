package sim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// volumeLife is what the checks know of a local volume name: a volume
// deleted and made again under the same name is a new incarnation, with
// data of its own and maybe another node.
type volumeLife struct {
	gen    int    // incarnations so far: the current one while exists
	exists bool   // committed and not deleted since
	node   string // where the current incarnation is pinned; "" until placed
}

// taskRec is a task as first committed with a node; a task never moves, and
// what it mounts and which secrets (at which versions) it uses never change.
type taskRec struct {
	node     string
	secrets  []string       // secret IDs
	versions map[string]int // secret ID -> version; missing means 1
	// vols is, for each local volume the task mounts, the incarnation it
	// was placed with: the one that existed then, or (if none did) the
	// next, which the plan creating it will pin.
	vols map[string]int
}

func (c *Cluster) volume(name string) *volumeLife {
	v := c.volumes[name]
	if v == nil {
		v = &volumeLife{}
		c.volumes[name] = v
	}
	return v
}

// volumeCreated learns of a volume created by a step, pinned or not.
func (c *Cluster) volumeCreated(v *types.Volume) {
	if v == nil || v.Driver != "local" {
		return
	}
	l := c.volume(v.Name)
	l.gen, l.exists, l.node = l.gen+1, true, v.NodeID
	if v.NodeID != "" {
		c.event(v.NodeID, "volume %s created here (incarnation %d)", v.Name, l.gen)
	} else {
		c.event("", "volume %s created, placed with its first task (incarnation %d)", v.Name, l.gen)
	}
}

// pinned learns of a volume a plan pins: a volume that did not exist is
// created there (lazily, by its first task's plan), and must be on the node
// of the plan's task that mounts it; one that exists must not move.
func (c *Cluster) pinned(v *types.Volume, p *fsm.PlanTasks) {
	if v == nil || v.Driver != "local" || v.NodeID == "" {
		return
	}
	l := c.volume(v.Name)
	switch {
	case !l.exists:
		l.gen, l.exists, l.node = l.gen+1, true, v.NodeID
		c.event(v.NodeID, "volume %s created lazily here with its first task (incarnation %d)", v.Name, l.gen)
		first := false
		for _, t := range p.Upsert {
			if t.NodeID == "" || !mounts(t, v.Name) {
				continue
			}
			if t.NodeID != v.NodeID {
				c.fail("a lazily created volume is on its first task's node", "a plan created volume %s on %s and placed task %s, which mounts it, on %s", v.Name, v.NodeID, t.ID, t.NodeID)
				return
			}
			first = true
		}
		if !first {
			c.fail("a lazily created volume is on its first task's node", "a plan created volume %s on %s with no task that mounts it there", v.Name, v.NodeID)
		}
	case l.node == "":
		l.node = v.NodeID
		c.event(v.NodeID, "volume %s pinned here with its first task", v.Name)
	case l.node != v.NodeID:
		c.fail("a local volume never moves", "a plan pinned volume %s to %s, but it is on %s", v.Name, v.NodeID, l.node)
	}
}

// placed records the tasks of a plan the first time each has a node, and
// checks that none is placed away from a local volume it mounts, as the
// volumes are once the plan applied.
func (c *Cluster) placed(p *fsm.PlanTasks) {
	for _, t := range p.Upsert {
		if t.NodeID == "" {
			continue
		}
		rec := c.tasks[t.ID]
		if rec == nil {
			rec = &taskRec{node: t.NodeID, secrets: t.Secrets, versions: t.SecretVersions}
			for _, m := range t.Mounts {
				if m == nil {
					continue
				}
				l := c.volume(m.Source)
				if rec.vols == nil {
					rec.vols = map[string]int{}
				}
				rec.vols[m.Source] = l.gen
				if !l.exists {
					rec.vols[m.Source] = l.gen + 1
				}
			}
			c.tasks[t.ID] = rec
		}
		if t.DesiredState != types.ContainerRunning {
			continue
		}
		if name, node, away := c.awayFromVolume(t.ID, t.NodeID); away {
			c.fail("a task with a local volume runs on its node", "a plan committed task %s on %s, away from volume %s on %s", t.ID, t.NodeID, name, node)
			return
		}
	}
}

// awayFromVolume reports whether task id, on node, mounts the incarnation
// of a local volume that is pinned to another node: which, and where.
func (c *Cluster) awayFromVolume(id, node string) (string, string, bool) {
	rec := c.tasks[id]
	if rec == nil {
		return "", "", false
	}
	for _, name := range slices.Sorted(maps.Keys(rec.vols)) {
		l := c.volumes[name]
		if l.exists && l.gen == rec.vols[name] && l.node != "" && l.node != node {
			return name, l.node, true
		}
	}
	return "", "", false
}

// volumeDeleted learns of a volume's delete. With force, the replicated
// services that mount it must be stopped (0 replicas) in the same step:
// checked on the state of the manager that first applied it.
func (c *Cluster) volumeDeleted(m *manager, d *fsm.DeleteVolume) {
	name := strings.TrimPrefix(d.ID, "vol-")
	if l := c.volumes[name]; l != nil && l.exists {
		l.exists, l.node = false, ""
		c.event("", "volume %s deleted (incarnation %d)", name, l.gen)
	}
	if !d.Force {
		return
	}
	if _, err := m.store.GetVolume(d.ID); !errors.Is(err, state.ErrNotFound) {
		c.fail("a volume deleted with force is gone and its services stopped", "volume %s is still in %s's state after its delete applied (%v)", name, m.id, err)
		return
	}
	svcs, err := m.store.ListServices()
	if err != nil {
		panic(err)
	}
	for _, s := range svcs {
		if mountsVolume(s, name) && s.Replicas != 0 {
			c.fail("a volume deleted with force is gone and its services stopped", "service %s mounts deleted volume %s and still wants %d replicas", s.Name, name, s.Replicas)
			return
		}
	}
}

func mounts(t *types.Container, volume string) bool {
	return slices.ContainsFunc(t.Mounts, func(m *types.VolumeMount) bool { return m != nil && m.Source == volume })
}

func mountsVolume(s *types.Service, volume string) bool {
	return slices.ContainsFunc(s.Volumes, func(m *types.VolumeMount) bool { return m != nil && m.Source == volume })
}

// staleVolume is the liveness side: once the cluster has converged, no
// container still runs (or starts, or stops) with a local volume other than
// the current incarnation of its name: one deleted, or one never created.
func (c *Cluster) staleVolume() error {
	for _, w := range c.workers {
		if !w.alive {
			continue
		}
		cs, _ := w.rt.Containers()
		for _, ct := range cs {
			if ct.State != types.ContainerPending && ct.State != types.ContainerRunning {
				continue
			}
			rec := c.tasks[ct.TaskID]
			if rec == nil {
				continue
			}
			for _, name := range slices.Sorted(maps.Keys(rec.vols)) {
				l := c.volumes[name]
				switch {
				case l.gen > rec.vols[name] || (l.gen == rec.vols[name] && !l.exists):
					return fmt.Errorf("task %s still runs on %s with volume %s, which was deleted", ct.TaskID, w.id, name)
				case l.gen < rec.vols[name]:
					return fmt.Errorf("task %s runs on %s with volume %s, which does not exist", ct.TaskID, w.id, name)
				}
			}
		}
	}
	return nil
}
