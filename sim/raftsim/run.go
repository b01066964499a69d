package raftsim

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/warren-orchestrator/warren/sim"
)

// Options tune a run.
type Options struct {
	Broken Broken
	// Clients is how many clients share a load step (default 4).
	Clients int
	// SnapshotThreshold and SnapshotInterval: raft's snapshot cadence;
	// zero means DefaultSnapshotThreshold and DefaultSnapshotInterval, so
	// that runs exercise snapshots, log compaction and InstallSnapshot to
	// a manager that was down.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// Dir is where the data directories go (see Config.Dir).
	Dir string
	// LogOutput receives raft's log lines; nil discards them.
	LogOutput io.Writer
	// Visualization, when set and the history is not linearizable,
	// receives porcupine's page showing why.
	Visualization io.Writer
	// Failpoints arms the failpoints of backends/raft, in a binary built
	// with failpoint-toolexec (FailpointsBuilt; elsewhere they cannot
	// fire, and the Outcome says so). The seed draws how often a hit is
	// delayed or fails and the crashes armed at failpoints; the run's
	// Source decides each hit (`warren sim --consensus raft --failpoints`).
	Failpoints bool
}

// The snapshot cadence of a run unless Options say otherwise. Production
// keeps raft's defaults (8192 entries, checked every 2 minutes).
const (
	DefaultSnapshotThreshold = 64
	DefaultSnapshotInterval  = time.Second
)

// Outcome is the result of one run.
type Outcome struct {
	Scenario string
	Seed     uint64
	Kind     string // sim.Pass, sim.Liveness, sim.Safety or sim.Crash
	Err      error
	// Plan is the fault schedule drawn from the seed: what replays.
	Plan      []string
	Events    []string
	Elections []Election
	History   HistoryStats
	Net       NetStats
	Elapsed   time.Duration // virtual
	Wall      time.Duration
	// Stacks are every goroutine's, when the bubble deadlocked.
	Stacks string
	// Failpoints is what each failpoint of backends/raft did, by name;
	// nil when the run armed none or the build has none.
	Failpoints map[string]FailpointHits
	// failpointsAsked: the run was to arm failpoints.
	failpointsAsked bool
	hist            *History
}

func (o *Outcome) String() string {
	s := fmt.Sprintf("%s seed=%d %s (%v virtual, %v wall; %d ops, %d unknown; %d elections)",
		o.Scenario, o.Seed, o.Kind, o.Elapsed.Round(time.Millisecond), o.Wall.Round(time.Millisecond),
		o.History.Ops, o.History.Unknown, len(o.Elections))
	switch {
	case o.Failpoints != nil:
		s += "; " + formatHits(o.Failpoints)
	case o.failpointsAsked:
		s += "; failpoints: none built in (build with failpoint-toolexec: make chaos)"
	}
	if o.Err != nil {
		s += fmt.Sprintf(": %v\n  plan: %s", o.Err, strings.Join(o.Plan, "; "))
	}
	return s
}

// Log is the run's plan and event log, for a failure message.
func (o *Outcome) Log() string {
	return "plan:\n  " + strings.Join(o.Plan, "\n  ") + "\nevents:\n  " + strings.Join(o.Events, "\n  ")
}

// Run runs the scenario with one seed on real managers, in a synctest
// bubble of its own hosted by t, then checks the client history for
// linearizability outside the bubble. t is never failed: the outcome says
// what happened. A test calls it directly; `warren sim --consensus raft`
// can host it through testing.Main.
func Run(t *testing.T, sc *sim.Scenario, seed uint64, opts Options) (out *Outcome) {
	wall := time.Now()
	if opts.Failpoints {
		FailpointsBuilt() // probe outside the bubble
	}
	defer func() {
		if r := recover(); r != nil {
			// synctest panics here when every goroutine of the bubble is
			// blocked for ever.
			if out == nil {
				out = &Outcome{Scenario: sc.Name, Seed: seed}
			}
			out.Kind, out.Err = sim.Crash, fmt.Errorf("raftsim: the bubble failed: %v", r)
			// The bubble's goroutines are still there, blocked: say where.
			buf := make([]byte, 1<<22)
			out.Stacks = string(buf[:runtime.Stack(buf, true)])
		}
		out.Wall = time.Since(wall)
	}()
	synctest.Test(t, func(*testing.T) { out = RunInBubble(sc, seed, opts) })
	if out.Kind == sim.Pass {
		if err := out.hist.CheckLinearizable(opts.Visualization); err != nil {
			out.Kind, out.Err = sim.Safety, &sim.Violation{Invariant: "the client history is linearizable", At: out.Elapsed, Detail: err.Error()}
		}
	}
	return out
}

// RunInBubble is Run without the bubble and without the linearizability
// check: it must be called inside a synctest bubble (or it runs in real
// time). The outcome's history is checked by Outcome.CheckLinearizable.
func RunInBubble(sc *sim.Scenario, seed uint64, opts Options) (out *Outcome) {
	src := NewSource(seed)
	armed := opts.Failpoints
	out = &Outcome{Scenario: sc.Name, Seed: seed, failpointsAsked: armed}
	plan := drawPlan(sc, src, armed)
	for _, a := range plan.actions {
		out.Plan = append(out.Plan, a.String())
	}
	cfg := Config{
		Managers: sc.Cluster.Managers, Net: plan.net, Disk: plan.disk, Dir: opts.Dir, Broken: opts.Broken, LogOutput: opts.LogOutput,
		SnapshotThreshold: opts.SnapshotThreshold, SnapshotInterval: opts.SnapshotInterval,
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = DefaultSnapshotInterval
	}
	c, err := NewCluster(cfg, src)
	if err != nil {
		out.Kind, out.Err = sim.Crash, err
		return out
	}
	out.hist = c.hist
	if armed && FailpointsBuilt() {
		c.fps = newFailpoints(c, plan.failpoints)
		disarm := armFailpoints(c.fps)
		defer func() {
			disarm()
			out.Failpoints = c.fps.Hits()
		}()
	}
	defer func() {
		if r := recover(); r != nil {
			out.Kind, out.Err = sim.Crash, fmt.Errorf("raftsim: panic at %v: %v", c.Elapsed(), r)
		}
		if err := c.Close(); err != nil && out.Err == nil {
			out.Kind, out.Err = sim.Crash, err
		}
		out.Events, out.Elections = c.Events(), c.Elections()
		out.History, out.Net = c.hist.Stats(), c.net.Stats()
	}()
	out.Err = c.run(sc, plan, opts)
	if out.Err == nil {
		c.mu.Lock()
		out.Err = c.bgErr
		c.mu.Unlock()
	}
	out.Elapsed = c.Elapsed()
	var v *sim.Violation
	switch {
	case out.Err == nil:
		out.Kind = sim.Pass
	case errors.As(out.Err, &v):
		out.Kind = sim.Safety
	case errors.Is(out.Err, sim.ErrLiveness):
		out.Kind = sim.Liveness
	default:
		out.Kind = sim.Crash
	}
	return out
}

// PlanOf is the plan a seed makes of a scenario: its steps and the chaos
// faults drawn from the seed, in the form Outcome.Plan has (a run with
// failpoints adds their lines after these). The same seed
// always gives the same plan; that is what a run replays.
func PlanOf(sc *sim.Scenario, seed uint64) []string {
	var out []string
	for _, a := range drawPlan(sc, NewSource(seed), false).actions {
		out = append(out, a.String())
	}
	return out
}

// CheckLinearizable checks the run's client history (outside a bubble).
func (o *Outcome) CheckLinearizable(visualization io.Writer) error {
	if o.hist == nil {
		return nil
	}
	return o.hist.CheckLinearizable(visualization)
}

// run is the faulty phase, the heal, the liveness phase and the checks.
func (c *Cluster) run(sc *sim.Scenario, plan *plan, opts Options) error {
	if err := c.Start(); err != nil {
		return err
	}
	clients := opts.Clients
	if clients <= 0 {
		clients = 4
	}
	var load sync.WaitGroup
	setup := clients // client IDs past the load's are the setup steps'
	q := &queue{}
	for _, a := range plan.actions {
		q.push(a)
	}
	// The faulty phase: each action at its time.
	for q.len() > 0 && c.Violation() == nil {
		a := q.pop()
		if a.at > sc.Duration.D() {
			break
		}
		sleepUntil(c.start.Add(a.at))
		switch a.kind {
		case actWrite:
			id := setup
			setup++
			load.Go(func() { c.write(id, a.op, a.key, a.value) })
		case actLoad:
			c.Load(Workload{Clients: clients, Rate: a.rate, For: a.span, Shared: plan.shared}, &load)
		case actCrash:
			id, err := c.resolve(a.target)
			if err != nil {
				c.event("%s skipped: %v", a, err)
				continue
			}
			if err := c.Crash(id); err != nil {
				return err
			}
			if a.span > 0 {
				q.push(action{at: a.at + a.span, kind: actRestart, target: id})
			}
		case actRestart:
			if err := c.Restart(a.target); err != nil {
				return err
			}
		case actPartition:
			var groups [][]string
			for _, g := range a.groups {
				var ids []string
				for _, name := range g {
					id, err := c.resolve(name)
					if err != nil {
						c.event("%s: %v", a, err)
						continue
					}
					ids = append(ids, id)
				}
				groups = append(groups, ids)
			}
			c.Partition(groups)
			if a.span > 0 {
				q.push(action{at: a.at + a.span, kind: actHeal})
			}
		case actHeal:
			c.Heal()
		case actStall:
			id, err := c.resolve(a.target)
			if err == nil {
				err = c.StallDisk(id, a.span)
			}
			if err != nil {
				c.event("%s skipped: %v", a, err)
			}
		case actSkip:
			c.event("%s: not simulated at the consensus layer", a)
		case actArm:
			if c.fps != nil {
				c.event("%s: armed", a)
				c.fps.arm(a)
			}
		}
	}
	if err := c.Violation(); err != nil {
		load.Wait()
		return err
	}
	sleepUntil(c.start.Add(sc.Duration.D()))
	// Heal: failpoints stop acting, partitions end, crashed managers
	// restart; the clients finish what they have in flight.
	if c.fps != nil {
		c.fps.stop()
	}
	c.Heal()
	for _, m := range c.managers {
		if err := c.Restart(m.id); err != nil {
			return err
		}
	}
	c.event("faults healed")
	load.Wait()
	if err := c.Violation(); err != nil {
		return err
	}
	// Liveness: a write acknowledged, then every manager caught up.
	bound := sc.Expect.ConvergeWithin.D()
	deadline := time.Now().Add(bound)
	probes, probed := 0, false
	var last error
	for {
		if !probed {
			probes++
			key := fmt.Sprintf("%sprobe-%d", secretPrefix, probes)
			c.write(setup, opCreate, key, key)
			probed = c.isAcked(key)
			last = errors.New("no write was acknowledged after the heal")
		}
		if probed {
			synctest.Wait()
			if last = c.Converged(); last == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: not converged %v after the faults healed: %v", sim.ErrLiveness, bound, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.event("converged")
	if err := c.Violation(); err != nil {
		return err
	}
	if err := c.CheckStores(); err != nil {
		return err
	}
	if min := sc.Expect.LeaderChangesMin; min > 0 {
		if changes := len(c.Elections()) - 1; changes < min {
			return fmt.Errorf("%w: %d leader changes, expected at least %d", sim.ErrLiveness, changes, min)
		}
	}
	return nil
}

// resolve turns a scenario's node name into a manager ID or "client";
// "leader" is the manager leading now.
func (c *Cluster) resolve(name string) (string, error) {
	switch {
	case name == "leader":
		if l := c.leader(); l != nil {
			return l.id, nil
		}
		return "", errors.New("no leader to target")
	case name == "client":
		return name, nil
	case c.manager(name) != nil:
		return name, nil
	}
	return "", fmt.Errorf("%s is not a manager: workers are not simulated at the consensus layer", name)
}

// queue is the faulty phase's actions in time order (ties: in the order
// they were pushed).
type queue struct {
	items []action
	seq   int
}

func (q *queue) len() int { return len(q.items) }

func (q *queue) push(a action) {
	q.seq++
	a.seq = q.seq
	i, _ := slices.BinarySearchFunc(q.items, a, func(x, y action) int {
		if c := cmp.Compare(x.at, y.at); c != 0 {
			return c
		}
		return cmp.Compare(x.seq, y.seq)
	})
	q.items = slices.Insert(q.items, i, a)
}

func (q *queue) pop() action {
	a := q.items[0]
	q.items = q.items[1:]
	return a
}
