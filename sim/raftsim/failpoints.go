package raftsim

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pingcap/failpoint"

	wraft "github.com/warren-orchestrator/warren/backends/raft"
)

// FailpointHits is what a failpoint did during a run.
type FailpointHits struct {
	// Hits counts the times the code passed the failpoint; Delays,
	// Crashes and Errors the hits the run acted on.
	Hits, Delays, Crashes, Errors int
}

func (h FailpointHits) acted() int { return h.Delays + h.Crashes + h.Errors }

var (
	failpointsBuiltOnce sync.Once
	failpointsBuilt     bool
)

// FailpointsBuilt reports whether this binary was built with
// failpoint-toolexec, so that Options.Failpoints can strike (see
// backends/raft.FailpointsBuilt).
func FailpointsBuilt() bool {
	failpointsBuiltOnce.Do(func() { failpointsBuilt = wraft.FailpointsBuilt() })
	return failpointsBuilt
}

// failpointPlan is what a seed makes of the failpoints before the cluster
// starts: how often a hit is delayed, and by how much at most, how often
// one fails where the code handles an error, and the crashes.
type failpointPlan struct {
	delayP   float64
	delayMax time.Duration
	errorP   float64
}

// drawFailpoints draws the run's failpoint parameters and crashes and adds
// them to the plan: a crash is armed at its time, and strikes the manager
// that next passes its failpoint, right after it.
func drawFailpoints(p *plan, duration time.Duration, src *Source) {
	fp := &failpointPlan{
		delayP:   src.Float64() * 0.02,
		delayMax: src.Between(time.Millisecond, 50*time.Millisecond),
		errorP:   src.Float64() * 0.01,
	}
	p.failpoints = fp
	p.actions = append(p.actions, action{kind: actSkip, what: fmt.Sprintf("failpoints delay p=%.4f up to %v, error p=%.4f",
		fp.delayP, fp.delayMax, fp.errorP)})
	for range 1 + src.IntN(2) {
		at := src.Between(duration/10, duration*7/10)
		name := wraft.Failpoints[src.IntN(len(wraft.Failpoints))]
		span := src.Between(500*time.Millisecond, 5*time.Second)
		p.actions = append(p.actions, action{at: at, kind: actArm, failpoint: name, span: span})
	}
}

// failpoints is a run's side of the failpoints: the crashes armed, and the
// hits so far. It acts only while the faulty phase lasts.
type failpoints struct {
	c    *Cluster
	plan *failpointPlan

	mu     sync.Mutex
	active bool
	armed  []action // crashes waiting for their failpoint
	hits   map[string]*FailpointHits
}

func newFailpoints(c *Cluster, plan *failpointPlan) *failpoints {
	f := &failpoints{c: c, plan: plan, active: true, hits: map[string]*FailpointHits{}}
	for _, name := range wraft.Failpoints {
		f.hits[name] = &FailpointHits{}
	}
	return f
}

// arm makes the next manager to pass a's failpoint crash right after it.
func (f *failpoints) arm(a action) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = append(f.armed, a)
}

// stop ends the faulty phase: hits are still counted, and nothing more.
func (f *failpoints) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active = false
	f.armed = nil
}

// Hits is what each failpoint did so far.
func (f *failpoints) Hits() map[string]FailpointHits {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]FailpointHits, len(f.hits))
	for name, h := range f.hits {
		out[name] = *h
	}
	return out
}

// verdict is what a hit does.
type verdict int

const (
	pass verdict = iota
	delay
	crash
	fail
)

// hit decides what the hit of failpoint name by manager id does, draws
// from the run's Source, and acts: a delay in virtual time, a crash of the
// manager, or an error (canFail: the code handles one here). A crash
// takes the manager off the network before hit returns, so nothing it
// does after the point reaches the others; what it writes to its own
// files after it (the append that follows beforeStoreLogs, say) still
// lands, as with every crash of this tier (see manager.crash).
func (f *failpoints) hit(name, id string, canFail bool) error {
	c := f.c
	m := c.manager(id)
	f.mu.Lock()
	h := f.hits[name]
	h.Hits++
	if !f.active || m == nil || m.current() == nil {
		f.mu.Unlock()
		return nil
	}
	v, span := pass, time.Duration(0)
	for i, a := range f.armed {
		if a.failpoint == name {
			v, span = crash, a.span
			f.armed = slices.Delete(f.armed, i, i+1)
			break
		}
	}
	if v == pass {
		switch p := c.src.Float64(); {
		case p < f.plan.delayP:
			v = delay
		case canFail && p < f.plan.delayP+f.plan.errorP:
			v = fail
		}
	}
	switch v {
	case delay:
		h.Delays++
	case crash:
		h.Crashes++
	case fail:
		h.Errors++
	}
	f.mu.Unlock()
	switch v {
	case delay:
		time.Sleep(c.src.Between(0, f.plan.delayMax))
	case crash:
		c.event("failpoint %s: crash %s, restart after %v", name, id, span)
		m.crash()
		c.restartAfter(id, span)
	case fail:
		c.event("failpoint %s: %s fails", name, id)
		return fmt.Errorf("raftsim: failpoint %s: injected error on %s", name, id)
	}
	return nil
}

// The run the failpoints act on: runs with failpoints take turns in a
// process, since failpoint's registry is the process's.
var (
	failpointRuns    sync.Mutex
	failpointsMu     sync.Mutex
	failpointsActive *failpoints
	registerOnce     sync.Once
)

// armFailpoints makes f the run the failpoints of backends/raft act on,
// until the returned function is called.
func armFailpoints(f *failpoints) (disarm func()) {
	failpointRuns.Lock()
	registerOnce.Do(registerFailpoints)
	failpointsMu.Lock()
	failpointsActive = f
	failpointsMu.Unlock()
	return func() {
		failpointsMu.Lock()
		failpointsActive = nil
		failpointsMu.Unlock()
		failpointRuns.Unlock()
	}
}

func activeFailpoints() *failpoints {
	failpointsMu.Lock()
	defer failpointsMu.Unlock()
	return failpointsActive
}

// registerFailpoints registers a callback for each failpoint of
// backends/raft, with the arguments each is given there.
func registerFailpoints() {
	plain := func(name string) func(id string, _ uint64) {
		return func(id string, _ uint64) {
			if f := activeFailpoints(); f != nil {
				_ = f.hit(name, id, false)
			}
		}
	}
	enable := func(name string, fn any) {
		if err := failpoint.EnableCall(wraft.FailpointPath(name), fn); err != nil {
			panic(err) // only a callback that is not a function fails
		}
	}
	enable(wraft.FailpointBeforeStoreLogs, func(id string, _ int, err *error) {
		f := activeFailpoints()
		if f == nil {
			return
		}
		// A failed append is handled on the leader (it steps down and
		// fails the writes), so only a leader's append fails here. A
		// follower's is not when it comes right after the follower cut a
		// conflicting suffix off its log: hashicorp/raft v1.8.0 keeps the
		// old last index (the TODO in appendEntries), then fails every
		// later append on "log not found" and never catches up until it
		// restarts. Failing followers' appends too finds that within a
		// few dozen chaos seeds, as a liveness failure.
		m := f.c.manager(id)
		inc := (*incarnation)(nil)
		if m != nil {
			inc = m.current()
		}
		*err = f.hit(wraft.FailpointBeforeStoreLogs, id, inc != nil && inc.node.IsLeader())
	})
	enable(wraft.FailpointAfterStoreLogs, plain(wraft.FailpointAfterStoreLogs))
	enable(wraft.FailpointBeforeApplyBatch, plain(wraft.FailpointBeforeApplyBatch))
	enable(wraft.FailpointAfterApplyBatch, plain(wraft.FailpointAfterApplyBatch))
	enable(wraft.FailpointPersistChunk, func(id string, _ int64, err *error) {
		if f := activeFailpoints(); f != nil {
			*err = f.hit(wraft.FailpointPersistChunk, id, true)
		}
	})
	enable(wraft.FailpointBeforeApplyReturn, plain(wraft.FailpointBeforeApplyReturn))
}

// formatHits is the failpoints part of an Outcome's line.
func formatHits(hits map[string]FailpointHits) string {
	total, acted := 0, 0
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(hits)) {
		h := hits[name]
		total += h.Hits
		acted += h.acted()
		part := fmt.Sprintf("%s %d", name, h.Hits)
		var did []string
		for _, d := range []struct {
			n    int
			what string
		}{{h.Delays, "delayed"}, {h.Crashes, "crashed"}, {h.Errors, "failed"}} {
			if d.n > 0 {
				did = append(did, fmt.Sprintf("%d %s", d.n, d.what))
			}
		}
		if len(did) > 0 {
			part += " (" + strings.Join(did, ", ") + ")"
		}
		parts = append(parts, part)
	}
	return fmt.Sprintf("failpoints: %d hits, %d acted on: %s", total, acted, strings.Join(parts, "; "))
}
