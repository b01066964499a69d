package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-orchestrator/warren/sim"
)

// Exit codes of `warren sim`, from the least to the most severe; a batch of
// runs exits with its most severe.
const (
	ExitLiveness         = 3
	ExitInvariant        = 2
	ExitCrash            = 4
	ExitNondeterministic = 5
)

// ExitError carries a process exit code other than 1.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

var severity = map[string]int{sim.Pass: 0, sim.Liveness: 1, sim.Safety: 2, sim.Crash: 3, sim.Undecided: 4}

var exitCodes = map[string]int{sim.Liveness: ExitLiveness, sim.Safety: ExitInvariant, sim.Crash: ExitCrash, sim.Undecided: ExitNondeterministic}

var brokenVariants = map[string]sim.Broken{
	"ack-before-commit":  sim.BrokenAckBeforeCommit,
	"no-failover-grace":  sim.BrokenNoFailoverGrace,
	"ignore-volumes":     sim.BrokenIgnoreVolumes,
	"extra-fsync":        sim.BrokenExtraFsync,
	"secrets-every-node": sim.BrokenSecretsEveryNode,
	"secrets-latest":     sim.BrokenSecretsLatest,
	"secrets-linger":     sim.BrokenSecretsLinger,
	"secrets-none":       sim.BrokenSecretsNone,
}

type simOptions struct {
	seed        uint64
	runs        int
	trace       string
	report      string
	determinism bool
	parallel    int
	quiet       bool
	broken      string
	consensus   string
	failpoints  bool
}

func newSimCommand() *cobra.Command {
	var o simOptions
	cmd := &cobra.Command{
		Use:   "sim FILE...",
		Short: "Run failure scenarios in the deterministic simulator",
		Long: `Runs each scenario file for --runs seeds starting at --seed, checking Warren's
invariants after every simulated event, then healing the faults and demanding
convergence. Each run prints its seed and the hash of its full trace: the same
seed on the same commit always gives the same hash.

With --consensus raft the managers are real hashicorp/raft nodes on the real
bolt stores, run in virtual time (a testing/synctest bubble) over a simulated
network; the seed draws the fault schedule, and the client history is checked
for linearizability. Workers are not simulated on this tier yet.

Exit codes: 0 all passed, 2 an invariant broke, 3 a run did not converge or
missed an expectation, 4 the simulation crashed, 5 a seed was not
deterministic (--check-determinism), 1 bad usage. With several failures the
most severe wins: 5, 4, 2, then 3.`,
		Example: `  warren sim scenarios/leader-failover.yaml
  warren sim scenarios/*.yaml --runs 200 --check-determinism --quiet
  warren sim scenarios/chaos.yaml --seed 17 --trace chaos-17.trace --report chaos-17.html
  warren sim --consensus raft scenarios/leader-failover.yaml --runs 5`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if o.consensus == ConsensusRaft {
				return runSimRaft(cmd.OutOrStdout(), files, o)
			}
			return runSim(cmd.OutOrStdout(), files, o)
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&o.seed, "seed", 1, "first `SEED`")
	f.IntVar(&o.runs, "runs", 1, "seeds to run per scenario (`K`)")
	f.StringVar(&o.trace, "trace", "", "write the trace of the run to `FILE` (one run only)")
	f.StringVar(&o.report, "report", "", "write an HTML report to `FILE.html`: the first failed run, else the last")
	f.BoolVar(&o.determinism, "check-determinism", false, "run every seed twice and fail on any difference")
	f.IntVar(&o.parallel, "parallel", runtime.GOMAXPROCS(0), "runs at once")
	f.BoolVar(&o.quiet, "quiet", false, "print only failures and the summary")
	f.StringVar(&o.broken, "broken", "", "run a deliberately broken variant (ack-before-commit, no-failover-grace, ignore-volumes, extra-fsync, secrets-every-node, secrets-latest, secrets-linger, secrets-none): proves the checks catch it")
	_ = f.MarkHidden("broken")
	f.BoolVar(&o.failpoints, "failpoints", false, "with --consensus raft, in a binary built with failpoint-toolexec (make chaos builds bin/warren-failpoints): strike the failpoints of the raft wiring, each decision drawn from the seed")
	addEnumFlag(cmd, &o.consensus, "consensus", "", ConsensusModel, []string{ConsensusModel, ConsensusRaft},
		"model: the raft model, replayed bit for bit from the seed; raft: real hashicorp/raft and bolt stores in virtual time (reproducible by fault schedule)")
	return cmd
}

func runSim(out io.Writer, files []string, o simOptions) error {
	if o.runs < 1 {
		return fmt.Errorf("--runs is %d: run at least 1 seed", o.runs)
	}
	if o.trace != "" && (o.runs > 1 || len(files) > 1) {
		return errors.New("--trace writes one run's trace: give one file and --runs 1")
	}
	broken, ok := brokenVariants[o.broken]
	if o.broken != "" && !ok {
		return fmt.Errorf("--broken %q: use ack-before-commit, no-failover-grace, ignore-volumes, extra-fsync, secrets-every-node, secrets-latest, secrets-linger or secrets-none", o.broken)
	}
	scenarios, err := loadScenarios(files)
	if err != nil {
		return err
	}

	start := time.Now()
	var all []*sim.Outcome
	var simulated time.Duration
	worst := sim.Pass
	for _, sc := range scenarios {
		outs, err := runSeeds(sc, o, broken)
		if err != nil {
			return err
		}
		for _, r := range outs {
			simulated += r.Elapsed
			if !o.quiet || r.Kind != sim.Pass {
				fmt.Fprintf(out, "%s seed=%d hash=%s %s (%d events, %v simulated)\n", r.Scenario, r.Seed, r.Hash[:16], r.Kind, r.Steps, r.Elapsed)
				if r.Err != nil {
					replay := r.Replay()
					if o.broken != "" {
						replay += " --broken " + o.broken
					}
					fmt.Fprintf(out, "  %v\n  replay: %s\n", r.Err, replay)
				}
			}
			if severity[r.Kind] > severity[worst] {
				worst = r.Kind
			}
		}
		all = append(all, outs...)
	}
	failed := 0
	for _, r := range all {
		if r.Kind != sim.Pass {
			failed++
		}
	}
	wall := time.Since(start)
	fmt.Fprintf(out, "%d runs: %d passed, %d failed (%v simulated in %v, %.0fx)\n",
		len(all), len(all)-failed, failed, simulated.Round(time.Millisecond), wall.Round(time.Millisecond), simulated.Seconds()/max(wall.Seconds(), 1e-9))

	if o.report != "" {
		pick := all[len(all)-1]
		for _, r := range all {
			if r.Kind != sim.Pass {
				pick = r
				break
			}
		}
		if err := writeReport(o.report, pick.Timeline); err != nil {
			return err
		}
	}
	if worst != sim.Pass {
		return &ExitError{Code: exitCodes[worst], Err: fmt.Errorf("%d of %d runs failed; worst: %s", failed, len(all), worst)}
	}
	return nil
}

func loadScenarios(files []string) ([]*sim.Scenario, error) {
	var scenarios []*sim.Scenario
	for _, f := range files {
		sc, err := sim.LoadScenario(f)
		if err != nil {
			return nil, err
		}
		scenarios = append(scenarios, sc)
	}
	return scenarios, nil
}

// runSeeds runs one scenario for every seed, o.parallel at a time, and
// returns the outcomes in seed order.
func runSeeds(sc *sim.Scenario, o simOptions, broken sim.Broken) ([]*sim.Outcome, error) {
	outs := make([]*sim.Outcome, o.runs)
	var trace bytes.Buffer
	var wg sync.WaitGroup
	next := make(chan int)
	for range max(o.parallel, 1) {
		wg.Go(func() {
			for i := range next {
				opts := sim.RunOptions{Broken: broken}
				if o.trace != "" {
					opts.Trace = &trace
				}
				seed := o.seed + uint64(i)
				r := sc.Run(seed, opts)
				if o.determinism && r.Kind != sim.Crash {
					again := sc.Run(seed, sim.RunOptions{Broken: broken})
					if again.Hash != r.Hash {
						r.Kind = sim.Undecided
						r.Err = fmt.Errorf("seed %d gave trace hash %s, then %s: the simulation is not deterministic (compare the two runs' --trace output)", seed, r.Hash[:16], again.Hash[:16])
					}
				}
				outs[i] = r
			}
		})
	}
	for i := range o.runs {
		next <- i
	}
	close(next)
	wg.Wait()
	if o.trace != "" {
		if err := os.WriteFile(o.trace, trace.Bytes(), 0o644); err != nil {
			return nil, fmt.Errorf("write trace: %w", err)
		}
	}
	return outs, nil
}

func writeReport(path string, tl *sim.Timeline) error {
	var b bytes.Buffer
	if err := sim.WriteReport(&b, tl); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
