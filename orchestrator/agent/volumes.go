package agent

import (
	"maps"
	"slices"
	"strings"

	"github.com/warren-orchestrator/warren/orchestrator"
)

// A node keeps the directories of the local volumes pinned to it: it makes
// one for each volume the managers list, and removes those it made once
// their volume is gone and no container mounts them any more. What it made
// is kept in a ledger (HeldVolume by volume ID), so that a directory it did
// not make (a user's, or one a runtime made before the volume had a record)
// is never removed. The decisions are here; the files are the worker's.

// Volume is a local volume pinned to this node, as the managers list it.
type Volume struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// HeldVolume is a ledger entry: the directory (named for the volume) this
// node made for a volume.
type HeldVolume struct {
	Name string `json:"name"`
	// Gone: the managers said the volume is no longer on this node; the
	// directory goes once no container mounts it.
	Gone bool `json:"gone,omitempty"`
}

// VolumePlan is what to do with the volume directories after an answer.
type VolumePlan struct {
	// Ensure are the volumes whose directory must exist, by name. The
	// caller records in Ledger those whose directory it had to make.
	Ensure []Volume
	// Remove are the ledger entries whose directory goes now, by name;
	// the caller drops each from Ledger once its directory is gone.
	Remove []Volume
	// Ledger is the ledger with the answer applied.
	Ledger map[string]HeldVolume
}

// PlanVolumes applies the managers' answer, the volumes pinned to this
// node and the held ones that are gone, to ledger (which it does not
// change). inUse says whether a container of this node mounts the named
// volume. A directory whose name a pinned volume has is kept, and passes
// to that volume if its old one is gone (a volume deleted and made again
// under the same name finds the old data, as Docker's local driver would
// not; the directory is only ever removed when no volume has its name).
func PlanVolumes(ledger map[string]HeldVolume, pinned []Volume, gone []string, inUse func(name string) bool) VolumePlan {
	l := maps.Clone(ledger)
	if l == nil {
		l = map[string]HeldVolume{}
	}
	for _, id := range gone {
		if e, ok := l[id]; ok {
			e.Gone = true
			l[id] = e
		}
	}
	byName := map[string]Volume{}
	for _, v := range pinned {
		byName[v.Name] = v
	}
	var remove []Volume
	for _, id := range slices.Sorted(maps.Keys(l)) {
		e := l[id]
		if !e.Gone {
			continue
		}
		if v, ok := byName[e.Name]; ok {
			delete(l, id)
			l[v.ID] = HeldVolume{Name: v.Name}
			continue
		}
		if !inUse(e.Name) {
			remove = append(remove, Volume{ID: id, Name: e.Name})
		}
	}
	ensure := slices.Clone(pinned)
	slices.SortFunc(ensure, func(x, y Volume) int { return strings.Compare(x.Name, y.Name) })
	slices.SortFunc(remove, func(x, y Volume) int { return strings.Compare(x.Name, y.Name) })
	return VolumePlan{Ensure: ensure, Remove: remove, Ledger: l}
}

// Held are the IDs of the ledger's volumes not known to be gone, sorted:
// what a node asks the managers about.
func Held(ledger map[string]HeldVolume) []string {
	var ids []string
	for id, e := range ledger {
		if !e.Gone {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// UsesVolume reports whether a container of this node may mount the named
// volume, as of the last Step: true also while that cannot be told (before
// the first Step, or with a container whose task this agent never saw), so
// that a volume's data is never removed under a container.
func (a *Agent) UsesVolume(name string) bool {
	return !a.mountsKnown || a.mounted[name]
}

// noteMounts records what the containers listed in now mount: from their
// assignment, else from what their task mounted when it was last assigned.
func (a *Agent) noteMounts(now []orchestrator.RuntimeContainer, want map[string]Assignment) {
	a.mounted, a.mountsKnown = map[string]bool{}, true
	seen := map[string]bool{}
	for _, c := range now {
		seen[c.TaskID] = true
		if as, ok := want[c.TaskID]; ok {
			var names []string
			for _, m := range as.Task.Mounts {
				if m != nil {
					names = append(names, m.Source)
				}
			}
			a.mountsOf[c.TaskID] = names
		}
		names, ok := a.mountsOf[c.TaskID]
		if !ok {
			a.mountsKnown = false
			continue
		}
		for _, n := range names {
			a.mounted[n] = true
		}
	}
	for id := range a.mountsOf {
		if !seen[id] {
			delete(a.mountsOf, id)
		}
	}
}
