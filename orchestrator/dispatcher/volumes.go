package dispatcher

import (
	"path"
	"slices"
	"strings"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// The managers' side of volume directories: a node asks which local
// volumes are pinned to it, which of those it made are gone, and reports
// how much its volumes hold.

// NodeVolumes returns the volumes pinned to nodeID, by name, and the IDs
// of held (the volumes whose directory the node made) that are no longer
// pinned to it: deleted, or (made again under the same ID) elsewhere.
func NodeVolumes(nodeID string, vols []*types.Volume, held []string) (pinned []agent.Volume, gone []string) {
	here := map[string]bool{}
	for _, v := range vols {
		if v.NodeID == nodeID && nodeID != "" {
			pinned = append(pinned, agent.Volume{ID: v.ID, Name: v.Name})
			here[v.ID] = true
		}
	}
	for _, id := range held {
		if !here[id] {
			gone = append(gone, id)
		}
	}
	slices.SortFunc(pinned, func(x, y agent.Volume) int { return strings.Compare(x.Name, y.Name) })
	slices.Sort(gone)
	return pinned, slices.Compact(gone)
}

// VolumeReport is the command that records nodeID's report of its
// volumes: root, the directory its volumes live under (empty if it did not
// say), and the bytes each holds by volume ID, measured at now. It carries
// only what changed (a size never recorded, or different; a directory that
// is not root/NAME), for volumes pinned to that node, in ID order, and is
// nil when nothing did, so that an idle cluster writes nothing. Reports of
// other volumes, and negative sizes, are ignored.
func VolumeReport(nodeID string, vols []*types.Volume, root string, sizes map[string]int64, now time.Time) *fsm.ReportVolumes {
	if nodeID == "" {
		return nil
	}
	var out []fsm.VolumeReport
	for _, v := range vols {
		if v.NodeID != nodeID {
			continue
		}
		r := fsm.VolumeReport{ID: v.ID}
		if root != "" && path.IsAbs(root) {
			if p := path.Join(root, v.Name); p != v.MountPath {
				r.MountPath = p
			}
		}
		if size, ok := sizes[v.ID]; ok && size >= 0 && (size != v.Size || v.SizeAt.IsZero()) {
			r.Size, r.SizeAt = size, now
		}
		if r.MountPath != "" || !r.SizeAt.IsZero() {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil
	}
	slices.SortFunc(out, func(x, y fsm.VolumeReport) int { return strings.Compare(x.ID, y.ID) })
	return &fsm.ReportVolumes{NodeID: nodeID, Volumes: out}
}
