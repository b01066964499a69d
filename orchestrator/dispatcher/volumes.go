package dispatcher

import (
	"slices"
	"strings"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
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

// VolumeSizes returns the records to write for nodeID's size report (bytes
// by volume ID), with Size and SizeAt (now) set: only volumes pinned to
// that node whose size changed or was never recorded, in ID order, so that
// an idle cluster writes nothing. Reports of other volumes, and negative
// sizes, are ignored. vols are not changed.
func VolumeSizes(nodeID string, vols []*types.Volume, sizes map[string]int64, now time.Time) []*types.Volume {
	var out []*types.Volume
	for _, v := range vols {
		size, ok := sizes[v.ID]
		if !ok || size < 0 || v.NodeID != nodeID || nodeID == "" {
			continue
		}
		if size == v.Size && !v.SizeAt.IsZero() {
			continue
		}
		c := types.Clone(v)
		c.Size, c.SizeAt = size, now
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y *types.Volume) int { return strings.Compare(x.ID, y.ID) })
	return out
}
