package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warren-orchestrator/warren/e2e/proc"
)

const (
	// failoverPace is each writer's pause between writes: the load of the
	// e2e failover spec.
	failoverPace = 10 * time.Millisecond
	// failoverWarmup is how many writes every writer has acknowledged
	// before a kill.
	failoverWarmup = 3
	// failoverWithin bounds each wait for the cluster, a restart or a
	// catch-up.
	failoverWithin = 30 * time.Second
	// failoverPoll is the period of the polls of the managers' health.
	failoverPoll = 5 * time.Millisecond
)

// millis converts a duration to the milliseconds the "-ms" metrics use.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkFailover times how long writes stop when the leader dies: 3
// warren manager processes on loopback (proc, as the e2e spec runs them),
// a writer through each, and per iteration a SIGKILL of the leader while
// every writer waits for an answer, until the first write sent after the
// kill is acknowledged. That is what a client waits: the election, the new
// leader's start and the API client's retry backoff. Restarting the killed
// manager and its catch-up happen with the timer stopped. Reports p50-ms
// and p99-ms (ns/op is their mean), and election-p50-ms: from the kill
// until a survivor's health says it leads.
//
// No ReportAllocs: the work is in other processes.
func BenchmarkFailover(b *testing.B) {
	ctx := b.Context()
	bin, err := proc.Build(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	root := b.TempDir()
	if err := checkOnDisk(root); err != nil {
		b.Fatal(err)
	}
	c, err := proc.StartCluster(ctx, proc.Config{Bin: bin, Root: root})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Kill)
	failovers := make([]time.Duration, b.N)
	elections := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		bound, cancel := context.WithTimeout(ctx, failoverWithin)
		leader, load := loadAndAwaitWrites(b, bound, c, i)

		b.StartTimer()
		killedAt, err := leader.Kill()
		if err != nil {
			b.Fatal(err)
		}
		_, electedAt, err := c.AwaitLeader(bound, failoverPoll)
		if err != nil {
			fatal(b, c, err)
		}
		first, err := load.Await(bound, 1, func(w proc.Write) bool { return w.Err == nil && !w.Start.Before(killedAt) })
		if err != nil {
			fatal(b, c, err)
		}
		b.StopTimer()
		failovers[i], elections[i] = first[0].End.Sub(killedAt), electedAt.Sub(killedAt)

		if err := c.Restart(ctx, leader); err != nil {
			fatal(b, c, err)
		}
		if err := c.AwaitCaughtUp(bound, leader, failoverPoll); err != nil {
			fatal(b, c, err)
		}
		for _, w := range load.Stop() {
			if w.Outcome() == proc.Failed {
				fatal(b, c, fmt.Errorf("write %s through %s refused during the failover: %w", w.Name, w.Via.Name, w.Err))
			}
		}
		cancel()
		b.StartTimer()
	}
	b.StopTimer()
	f := summarise(failovers)
	b.ReportMetric(millis(f.p50), "p50-ms")
	b.ReportMetric(millis(f.p99), "p99-ms")
	b.ReportMetric(millis(summarise(elections).p50), "election-p50-ms")
}

// loadAndAwaitWrites waits for a settled cluster, starts writers through
// every manager, and returns the leader once each writer has acknowledged
// writes and all of them have one in flight.
func loadAndAwaitWrites(b *testing.B, ctx context.Context, c *proc.Cluster, i int) (*proc.Manager, *proc.Load) {
	b.Helper()
	leader, err := c.Settled(ctx, failoverPoll)
	if err != nil {
		fatal(b, c, err)
	}
	load, err := c.StartLoad(ctx, fmt.Sprintf("b%04d", i), failoverPace)
	if err != nil {
		fatal(b, c, err)
	}
	b.Cleanup(load.Abort) // a no-op after Stop
	for _, m := range c.Managers {
		if _, err := load.Await(ctx, failoverWarmup, func(w proc.Write) bool { return w.Via == m && w.Err == nil }); err != nil {
			fatal(b, c, fmt.Errorf("writes through %s: %w", m.Name, err))
		}
	}
	if !c.Leads(ctx, leader) {
		fatal(b, c, fmt.Errorf("%s stopped leading during the warm-up", leader.Name))
	}
	if err := load.AwaitInFlight(ctx, len(c.Managers), 100*time.Microsecond); err != nil {
		fatal(b, c, err)
	}
	return leader, load
}

// fatal ends the benchmark with err and the end of every manager's log.
func fatal(b *testing.B, c *proc.Cluster, err error) {
	b.Helper()
	var logs strings.Builder
	for _, m := range c.Managers {
		fmt.Fprintf(&logs, "\n===== the end of %s's log (%s) =====\n%s", m.Name, m.LogPath, m.Tail(40))
	}
	b.Fatalf("%v%s", err, logs.String())
}
