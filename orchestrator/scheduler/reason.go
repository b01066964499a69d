package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// aggregate says why none of total nodes could take a task, counting the
// nodes each filter removed, as Nomad and Swarm do: one line that tells a
// user which filter to relax, listed in pipeline order so that the same
// cluster always reads the same.
func aggregate(total int, rejected []*rejection) string {
	type group struct {
		first *rejection
		count int
		free  int64 // the most any node of the group had left
	}
	var groups []*group
	byKey := map[[2]int]*group{}
	for _, r := range rejected {
		k := [2]int{int(r.filter), r.index}
		g := byKey[k]
		if g == nil {
			g = &group{first: r}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.count++
		g.free = max(g.free, r.free)
	}
	slices.SortFunc(groups, func(a, b *group) int {
		return cmp.Or(cmp.Compare(a.first.filter, b.first.filter), cmp.Compare(a.first.index, b.first.index))
	})
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = strconv.Itoa(g.count) + " " + g.first.counted(g.count, g.free)
	}
	noun := "nodes"
	if total == 1 {
		noun = "node"
	}
	return fmt.Sprintf("no suitable node (%d %s): %s", total, noun, strings.Join(parts, ", "))
}

// counted says why count nodes were refused, after the count: "2 " +
// counted. mostFree is the most any of them had left, for resource filters.
func (r *rejection) counted(count int, mostFree int64) string {
	switch r.filter {
	case filterReady:
		return "not ready"
	case filterActive:
		return "drained or paused"
	case filterConstraint:
		if count == 1 {
			return "does not match " + r.what
		}
		return "do not match " + r.what
	case filterCPU:
		return fmt.Sprintf("with insufficient CPU (needs %s, most free %s)", formatCores(r.need), formatCores(mostFree))
	case filterMemory:
		return fmt.Sprintf("with insufficient memory (needs %s, most free %s)", formatBytes(r.need), formatBytes(mostFree))
	case filterHostPort:
		return "with host port " + r.what + " in use"
	}
	return "refused"
}

// formatCores formats thousandths of a core for a user: "1.5 cores".
func formatCores(milli int64) string {
	s := strconv.FormatFloat(float64(milli)/1000, 'f', -1, 64)
	if milli == 1000 {
		return s + " core"
	}
	return s + " cores"
}

// formatBytes formats a size in binary units, as memory is sold: "512 MiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	s := strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0")
	return s + " " + [...]string{"KiB", "MiB", "GiB", "TiB", "PiB"}[i]
}
