package scheduler

import (
	"fmt"
	"maps"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// localDriver is the driver of volumes whose data lives on one node's disk;
// it is also what a mount of a volume that does not exist yet will create.
const localDriver = "local"

// volumeRoot is where local volumes live on a node's disk.
const volumeRoot = "/var/lib/warren/volumes/"

// affinity is what a task's volume mounts require of its node.
type affinity struct {
	nodeID   string // the only node the task may run on; "" when unrestricted
	volume   string // the volume that pins it there, for reasons
	conflict string // set when mounts pin the task to different nodes
}

// affinity reads the pins of the local volumes mounted, including those
// made earlier in this call. Volumes of other drivers are reachable from any
// node, and a local volume with no node yet goes where the task goes.
func (s *state) affinity(mounts []*types.VolumeMount) affinity {
	var a affinity
	for _, m := range mounts {
		if m == nil {
			continue
		}
		v := s.volumes[m.Source]
		if v == nil || v.Driver != localDriver || v.NodeID == "" {
			continue
		}
		switch {
		case a.nodeID == "":
			a.nodeID, a.volume = v.NodeID, v.Name
		case a.nodeID != v.NodeID:
			a.conflict = fmt.Sprintf("volumes %s and %s are on different nodes: %s and %s: a task can only mount local volumes of one node",
				a.volume, v.Name, a.nodeID, v.NodeID)
			return a
		}
	}
	return a
}

// pin returns the volumes that placing task t on nodeID pins there: local
// volumes mounted that have no node yet, and those that do not exist, which
// are created here. Each is a new record; the snapshot's are never changed.
func (s *state) pin(mounts []*types.VolumeMount, nodeID string, t *types.Container) []*types.Volume {
	var pins []*types.Volume
	seen := map[string]bool{}
	for _, m := range mounts {
		if m == nil || seen[m.Source] {
			continue
		}
		seen[m.Source] = true
		v := s.volumes[m.Source]
		switch {
		case v == nil:
			pins = append(pins, &types.Volume{
				// The ID is derived from the name, not drawn at random:
				// placement is a pure function and a replay must create
				// the same record. Names are unique, so IDs are too.
				ID:        "vol-" + m.Source,
				Name:      m.Source,
				Driver:    localDriver,
				NodeID:    nodeID,
				MountPath: volumeRoot + m.Source,
				Options:   map[string]string{},
				// No clock in the core: the volume is as old as the task
				// that asked for it.
				CreatedAt: t.CreatedAt,
			})
		case v.Driver == localDriver && v.NodeID == "":
			c := *v
			c.NodeID = nodeID
			c.Options = maps.Clone(v.Options)
			pins = append(pins, &c)
		}
	}
	return pins
}
