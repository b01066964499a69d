package sim

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Timeline is what a run records for its report. Every instant is simulated
// time since the run's start, so the same seed gives the same Timeline.
type Timeline struct {
	Scenario  string
	File      string // the scenario file as it was named, for the replay command
	Seed      uint64
	TraceHash string // hex
	Result    string // "pass", or the failure message
	End       time.Duration
	Managers  []string // node IDs, in display order
	Workers   []string
	Leaders   []LeaderSpan // who led, per term
	Faults    []FaultSpan
	Tasks     []TaskSample  // tasks running per node, sampled
	Writes    []WriteSample // client writes, acknowledged or lost
	Events    []Event       // elections, nodes down and up, failed invariant checks, ...
}

// LeaderSpan is one manager's leadership for one term. To is 0 while it
// still led at the end of the run.
type LeaderSpan struct {
	Manager string
	Term    uint64
	From    time.Duration
	To      time.Duration
}

// FaultSpan is one injected fault, such as a partition or a crash. To is 0
// for an instantaneous fault.
type FaultSpan struct {
	Kind   string
	Target string
	From   time.Duration
	To     time.Duration
}

// TaskSample counts the tasks running on each node (by node ID) at one instant.
type TaskSample struct {
	At      time.Duration
	Running map[string]int
}

// WriteSample is one client write: when it was issued, and how long until it
// was acknowledged. Acked is false for a lost write.
type WriteSample struct {
	At      time.Duration
	Latency time.Duration
	Acked   bool
}

// Event is a notable moment of a run, on one node or (Node empty) cluster-wide.
type Event struct {
	At   time.Duration
	Node string
	Text string
}

// passed reports whether the run met every check.
func (tl *Timeline) passed() bool { return tl.Result == "pass" }

// ReplayCommand is the command line that reruns this scenario with this seed.
func (tl *Timeline) ReplayCommand() string {
	file := tl.File
	if file == "" {
		file = "scenarios/" + tl.Scenario + ".yaml"
	}
	return fmt.Sprintf("warren sim %s --seed %d", shellWord(file), tl.Seed)
}

// WriteLatencyPercentile is the nearest-rank p-th percentile (0 < p <= 100)
// of the latencies of acknowledged writes, or 0 if none was acknowledged.
// Lost writes have no latency, so they are left out, not counted as slow.
func (tl *Timeline) WriteLatencyPercentile(p float64) time.Duration {
	return nearestRankPercentile(tl.ackedLatencies(), p)
}

// ackedLatencies returns the latencies of acknowledged writes, sorted.
func (tl *Timeline) ackedLatencies() []time.Duration {
	var out []time.Duration
	for _, w := range tl.Writes {
		if w.Acked {
			out = append(out, w.Latency)
		}
	}
	slices.Sort(out)
	return out
}

// nearestRankPercentile returns the smallest value of sorted such that at
// least p percent of the values are at or below it.
func nearestRankPercentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// p*n before /100: exact for whole p, so p99 of 100 values is rank 99, not 100.
	rank := int(math.Ceil(p * float64(len(sorted)) / 100))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// until is when the span ended, end if it lasted to the end of the run.
func (s LeaderSpan) until(end time.Duration) time.Duration {
	if s.To == 0 {
		return end
	}
	return s.To
}

// shellWord quotes s for a POSIX shell unless it is plainly safe, so a
// replay command pastes as is whatever the scenario is called.
func shellWord(s string) string {
	safe := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:+=,@", r))
	}) < 0
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
