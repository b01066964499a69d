package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/warren-orchestrator/warren/sim"
	"github.com/warren-orchestrator/warren/sim/raftsim"
)

// Consensus layers `warren sim` can run a scenario on.
const (
	ConsensusModel = "model" // tier A: the raft model, bit for bit from the seed
	ConsensusRaft  = "raft"  // tier B: real hashicorp/raft and bolt in virtual time
)

var raftBrokenVariants = map[string]raftsim.Broken{
	"ack-before-commit": raftsim.BrokenAckBeforeCommit,
	"stale-read":        raftsim.BrokenStaleRead,
	"forgetful-restart": raftsim.BrokenForgetfulRestart,
}

// raftSimTest names the one test testing.Main runs in the warren binary.
const raftSimTest = "WarrenSimRaft"

// runSimRaft runs the scenarios on real raft (package raftsim). A run
// needs a testing/synctest bubble, and a bubble needs a *testing.T: the
// binary enters one through testing.Main, which parses os.Args as test
// flags and exits when its tests end, so the runs, their report and the
// exit happen inside the test function.
func runSimRaft(out io.Writer, files []string, o simOptions) error {
	if o.runs < 1 {
		return fmt.Errorf("--runs is %d: run at least 1 seed", o.runs)
	}
	switch {
	case o.trace != "", o.report != "":
		return errors.New("--trace and --report need --consensus model: real raft runs are not replayed event by event")
	case o.determinism:
		return errors.New("--check-determinism needs --consensus model: real raft runs are reproducible by fault schedule, not bit for bit")
	case o.failpoints && !raftsim.FailpointsBuilt():
		return errors.New("--failpoints needs a binary built with failpoint-toolexec: run `make chaos`, or build bin/warren-failpoints as its chaos target does")
	}
	broken, ok := raftBrokenVariants[o.broken]
	if o.broken != "" && !ok {
		return fmt.Errorf("--broken %q with --consensus raft: use ack-before-commit, stale-read or forgetful-restart", o.broken)
	}
	scenarios, err := loadScenarios(files)
	if err != nil {
		return err
	}
	if testing.Testing() {
		return errors.New("--consensus raft runs in the warren binary only: it hosts its synctest bubbles through testing.Main (from a test, call raftsim.Run)")
	}
	run := func(t *testing.T) {
		os.Exit(simRaftSeeds(t, out, scenarios, o, broken))
	}
	os.Args = []string{os.Args[0], "-test.run=^" + raftSimTest + "$"}
	testing.Main(func(_, _ string) (bool, error) { return true, nil },
		[]testing.InternalTest{{Name: raftSimTest, F: run}}, nil, nil)
	return nil // testing.Main has exited
}

// simRaftSeeds runs every scenario for every seed, one after another,
// prints each outcome and the summary, and returns the exit code.
func simRaftSeeds(t *testing.T, out io.Writer, scenarios []*sim.Scenario, o simOptions, broken raftsim.Broken) int {
	start := time.Now()
	worst, failed, total := sim.Pass, 0, 0
	var simulated time.Duration
	for _, sc := range scenarios {
		for i := range o.runs {
			seed := o.seed + uint64(i)
			r := raftsim.Run(t, sc, seed, raftsim.Options{Broken: broken, Failpoints: o.failpoints})
			total++
			simulated += r.Elapsed
			if r.Kind != sim.Pass {
				failed++
			}
			if !o.quiet || r.Kind != sim.Pass {
				fmt.Fprintln(out, r)
				if r.Err != nil {
					replay := fmt.Sprintf("warren sim --consensus raft %s --seed %d", sc.File, seed)
					if o.failpoints {
						replay = "bin/warren-failpoints" + strings.TrimPrefix(replay, "warren") + " --failpoints"
					}
					if o.broken != "" {
						replay += " --broken " + o.broken
					}
					fmt.Fprintf(out, "  replay: %s\n", replay)
				}
			}
			if severity[r.Kind] > severity[worst] {
				worst = r.Kind
			}
		}
	}
	wall := time.Since(start)
	fmt.Fprintf(out, "%d runs on real raft: %d passed, %d failed (%v simulated in %v)\n",
		total, total-failed, failed, simulated.Round(time.Millisecond), wall.Round(time.Millisecond))
	if worst != sim.Pass {
		fmt.Fprintf(out, "Error: %d of %d runs failed; worst: %s\n", failed, total, worst)
		return exitCodes[worst]
	}
	return 0
}
