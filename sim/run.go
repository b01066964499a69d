package sim

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
)

// Failure kinds of a run, from the least to the most severe for exit codes.
const (
	Pass      = "pass"
	Liveness  = "liveness"  // did not converge, or an expectation failed
	Safety    = "invariant" // an invariant broke
	Crash     = "crash"     // the simulation itself panicked
	Undecided = "nondeterministic"
)

// Outcome is the result of one run of a scenario with one seed.
type Outcome struct {
	Scenario string
	Seed     uint64
	Hash     string
	Kind     string // Pass, Liveness, Safety or Crash
	Err      error
	Timeline *Timeline
	Steps    uint64
	Elapsed  time.Duration // simulated
}

// Replay is the command that runs this seed again.
func (o *Outcome) Replay() string { return o.Timeline.ReplayCommand() }

func (o *Outcome) String() string {
	s := fmt.Sprintf("%s seed=%d hash=%s %s", o.Scenario, o.Seed, o.Hash, o.Kind)
	if o.Err != nil {
		s += fmt.Sprintf(": %v\n  replay: %s", o.Err, o.Replay())
	}
	return s
}

// RunOptions tune a run.
type RunOptions struct {
	Broken Broken
	Trace  io.Writer
}

// Run runs the scenario with one seed: its steps and the faults drawn from
// the seed during the faulty phase, checking the invariants after every
// event; then it heals every fault and demands convergence within the
// scenario's bound, and checks the expectations.
func (sc *Scenario) Run(seed uint64, opts RunOptions) (out *Outcome) {
	cfg := sc.config(seed)
	cfg.Broken, cfg.Trace = opts.Broken, opts.Trace
	c := New(cfg)
	c.tl.Scenario, c.tl.File = sc.Name, sc.File
	out = &Outcome{Scenario: sc.Name, Seed: seed, Timeline: c.tl}
	defer func() {
		if r := recover(); r != nil {
			out.Kind, out.Err = Crash, fmt.Errorf("the simulation panicked at %v: %v", c.eng.Elapsed(), r)
		}
		out.Hash, out.Steps, out.Elapsed = c.eng.TraceHash(), c.eng.Steps(), c.eng.Elapsed()
		c.tl.TraceHash = out.Hash
		c.tl.Result = out.Kind
		if out.Err != nil {
			c.tl.Result = out.Kind + ": " + out.Err.Error()
		}
	}()
	sc.drawChaos(c)
	c.Start()
	for _, st := range sc.Steps {
		c.eng.After(st.At.D(), func() { c.step(st) })
	}
	err := c.Run(sc.Duration.D())
	if err == nil {
		c.healAll()
		err = c.AwaitConverged(sc.Expect.ConvergeWithin.D())
	}
	if err == nil {
		err = c.CheckAcknowledged()
	}
	if err == nil {
		err = sc.expectations(c)
	}
	out.Err = err
	var v *Violation
	switch {
	case err == nil:
		out.Kind = Pass
	case errors.As(err, &v):
		out.Kind = Safety
	default:
		out.Kind = Liveness
	}
	return out
}

// drawChaos draws the per-seed fault settings and the random faults, all
// from the run's one random source, before anything else happens.
func (sc *Scenario) drawChaos(c *Cluster) {
	ch := sc.Chaos
	if ch == nil {
		return
	}
	e := c.eng
	if r := ch.LatencyMax; r != nil {
		c.net.cfg.LatencyMax = max(c.net.cfg.LatencyMin, e.Between(r[0].D(), r[1].D()))
	}
	if len(ch.Loss) == 2 {
		c.net.cfg.Loss = ch.Loss[0] + e.Rand.Float64()*(ch.Loss[1]-ch.Loss[0])
	}
	c.cfg.Net = c.net.cfg
	e.Tracef("chaos latency-max=%v loss=%.4f faults=%d", c.net.cfg.LatencyMax, c.net.cfg.Loss, ch.Faults)
	for range ch.Faults {
		at := e.Between(ch.Window[0].D(), ch.Window[1].D())
		kind := ch.Kinds[e.Rand.IntN(len(ch.Kinds))]
		span := e.Between(500*time.Millisecond, 5*time.Second)
		var target string
		switch kind {
		case "crash-leader":
			target = "leader"
		case "disk-stall":
			target = c.managers[e.Rand.IntN(len(c.managers))].id
		case "crash-task", "unhealthy":
			if len(c.workers) == 0 {
				continue
			}
			target = c.workers[e.Rand.IntN(len(c.workers))].id
		default:
			target = c.randomNode()
		}
		var groups [][]string
		if kind == "partition" {
			// Cut one node, or the leader with the client, away from the rest.
			groups = [][]string{{target}}
			if e.Chance(0.5) {
				groups = [][]string{{"leader", "client"}}
			}
		}
		e.Tracef("chaos %s %s at=%v for=%v", kind, target, at, span)
		e.After(at, func() {
			var err error
			switch kind {
			case "crash", "crash-leader":
				err = c.Crash(target, span)
			case "partition":
				err = c.Partition(groups, span)
			case "disk-stall":
				err = c.StallDisk(target, span)
			case "crash-task":
				err = c.CrashTask(target)
			case "unhealthy":
				err = c.Unhealthy(target, span)
			}
			if err != nil {
				c.eng.Tracef("chaos %s skipped: %v", kind, err)
			}
		})
	}
}

func (c *Cluster) randomNode() string {
	n := len(c.managers) + len(c.workers)
	i := c.eng.Rand.IntN(n)
	if i < len(c.managers) {
		return c.managers[i].id
	}
	return c.workers[i-len(c.managers)].id
}

// step carries out one scenario step.
func (c *Cluster) step(st Step) {
	var err error
	switch {
	case st.Load != nil:
		c.Load(st.Load.Rate, st.Load.For.D())
	case st.Crash != nil:
		err = c.Crash(st.Crash.Node, st.Crash.RestartAfter.D())
	case st.Restart != nil:
		var id string
		if id, err = c.node(st.Restart.Node); err == nil {
			c.Restart(id)
		}
	case st.Partition != nil:
		err = c.Partition(st.Partition.Groups, st.Partition.HealAfter.D())
	case st.Heal != nil:
		c.Heal()
	case st.DiskStall != nil:
		err = c.StallDisk(st.DiskStall.Node, st.DiskStall.For.D())
	case st.CrashTask != nil:
		err = c.CrashTask(st.CrashTask.Node)
	case st.Unhealthy != nil:
		err = c.Unhealthy(st.Unhealthy.Node, st.Unhealthy.For.D())
	default:
		c.client.operate(operation{what: fmt.Sprintf("step at %v", st.At.D()), build: func() (fsm.Command, error) {
			return c.stepCommand(st)
		}})
	}
	if err != nil {
		c.eng.Tracef("step at %v failed: %v", st.At.D(), err)
		c.event("", "step failed: %v", err)
	}
}

// healAll ends the faulty phase: partitions heal, crashed nodes restart and
// workers start healthy containers again.
func (c *Cluster) healAll() {
	c.Heal()
	for _, w := range c.workers {
		w.sickUntil = 0
		if w.alive {
			w.rt.SetKnobs(w.knobs())
		}
	}
	for _, m := range c.managers {
		if !m.raft.alive {
			c.Restart(m.id)
		}
	}
	for _, w := range c.workers {
		if !w.alive {
			c.Restart(w.id)
		}
	}
	c.event("", "faults healed")
}

// expectations checks the scenario's Expect section.
func (sc *Scenario) expectations(c *Cluster) error {
	x := sc.Expect
	if x.WriteP99Under > 0 {
		if p99 := c.tl.WriteLatencyPercentile(99); p99 >= x.WriteP99Under.D() {
			return fmt.Errorf("%w: write latency p99 %v, expected under %v", ErrLiveness, p99, x.WriteP99Under.D())
		}
		if len(c.tl.Writes) == 0 {
			return fmt.Errorf("%w: write-p99-under needs a load step: no write was made", ErrLiveness)
		}
	}
	if changes := len(c.leaders) - 1; changes < x.LeaderChangesMin {
		return fmt.Errorf("%w: %d leader changes, expected at least %d", ErrLiveness, changes, x.LeaderChangesMin)
	}
	return nil
}
