package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/e2e/proc"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

const (
	// rounds of kill-the-leader. One cluster lives through all of them:
	// each round kills whichever manager leads then, which is never the
	// one the round before killed (that one came back as a follower, and
	// pre-vote keeps it from disrupting the leader), and restarts it. So
	// every manager dies several times, restarts on a log that others
	// moved past, and is elected again on top of earlier failovers' state:
	// a stronger test than 20 fresh clusters, and it fits the time budget
	// (a fresh cluster costs seconds of init and joins).
	rounds = 20
	// pace is each writer's pause between writes: ~100 writes/s per
	// manager at most, so the state grows by a few hundred services a
	// round, each with a task the leader schedules.
	pace = 10 * time.Millisecond
	// warmupAcks is how many writes every writer has acknowledged before
	// the kill, so that writes are in flight through every manager.
	warmupAcks = 3
	// afterAcks is how many writes every surviving writer has acknowledged
	// after the kill, before the old leader restarts.
	afterAcks = 3
	// poll is the period of every poll of the managers' health.
	poll = 5 * time.Millisecond
	// inFlightPoll is the period of the wait for writes in flight, short
	// next to a write's few milliseconds.
	inFlightPoll = 100 * time.Microsecond
	// settleWithin bounds each wait for the cluster, a restart or a
	// catch-up.
	settleWithin = 30 * time.Second
	// logTail is how many lines of each manager's log a failure prints.
	logTail = 400
)

// round is what one kill of the leader measured.
type round struct {
	killed, elected *proc.Manager
	// election is from the kill until a survivor's health said it leads;
	// failover until the first write sent after the kill was acknowledged
	// (it includes the client's retry backoff).
	election, failover time.Duration
	// catchUp is from the restart until the old leader's stale read held
	// every acknowledged write.
	catchUp time.Duration
	writes  []proc.Write
}

var _ = Describe("A cluster of three warren processes", Label("integ"), func() {
	var c *proc.Cluster
	BeforeEach(func(ctx SpecContext) {
		root := GinkgoT().TempDir()
		var err error
		c, err = proc.StartCluster(ctx, proc.Config{Bin: warrenBin, Root: root})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			c.Kill()
			if CurrentSpecReport().Failed() {
				printLogs(c)
			}
		})
		if !c.DistinctIPs {
			GinkgoWriter.Println("127.0.0.2 cannot be bound here: the managers share 127.0.0.1 and differ by port only")
		}
		for _, m := range c.Managers {
			GinkgoWriter.Printf("%s: api %s, raft %s, data %s, pid %d\n", m.Name, m.APIAddr, m.RaftAddr, m.DataDir, m.Pid())
		}
	})

	When("the leader is killed with SIGKILL under writes, 20 times over", func() {
		It("elects another, keeps every acknowledged write, and the old leader catches up", SpecTimeout(6*time.Minute), func(ctx SpecContext) {
			// The cluster as `warren cluster info` shows it to a person.
			var addrs []string
			for _, m := range c.Managers {
				addrs = append(addrs, m.APIAddr)
			}
			out, err := c.Managers[0].CLI(ctx, addrs, "cluster", "info", "-o", "json")
			Expect(err).NotTo(HaveOccurred())
			var info api.ClusterInfo
			Expect(json.Unmarshal([]byte(out), &info)).To(Succeed())
			Expect(info.Managers).To(HaveLen(3))
			Expect(info.Leader).NotTo(BeEmpty())

			acked := map[string]bool{}         // every acknowledged write
			unknown := map[string]proc.Write{} // writes of unknown outcome
			var results []round
			for i := range rounds {
				r := killLeader(ctx, c, i, acked)
				results = append(results, r)
				n := map[proc.Outcome]int{}
				for _, w := range r.writes {
					n[w.Outcome()]++
					switch w.Outcome() {
					case proc.Acked:
						acked[w.Name] = true
					case proc.Unknown:
						unknown[w.Name] = w
					}
				}
				Expect(failures(r.writes)).To(BeEmpty(), "round %d: writes refused for good", i)
				// Every write acknowledged so far, this round's and the
				// earlier rounds', before and after the kill, is in a
				// linearizable read; and nothing else but writes of
				// unknown outcome.
				names := list(ctx, c, false)
				Expect(missing(acked, names)).To(BeEmpty(), "round %d: acknowledged writes lost", i)
				Expect(extra(names, acked, unknown)).To(BeEmpty(), "round %d: services nobody created", i)
				GinkgoWriter.Printf("round %2d: killed %s (leader); %s elected after %v; first write acked after %v; %s caught up %v after restarting; writes: %d acked, %d unknown\n",
					i, r.killed.Name, r.elected.Name, r.election.Round(time.Millisecond), r.failover.Round(time.Millisecond),
					r.killed.Name, r.catchUp.Round(time.Millisecond), n[proc.Acked], n[proc.Unknown])
			}

			By("every manager's own state holding every acknowledged write")
			for _, m := range c.Managers {
				only, err := c.Client(m.APIAddr)
				Expect(err).NotTo(HaveOccurred())
				Eventually(func() ([]string, error) {
					got, err := listWith(ctx, only, true)
					return missing(acked, got), err
				}).WithContext(ctx).WithTimeout(settleWithin).WithPolling(50*time.Millisecond).Should(BeEmpty(), "%s's stale read", m.Name)
				only.Close()
			}

			names := list(ctx, c, false)
			var present []string
			for _, name := range slices.Sorted(maps.Keys(unknown)) {
				w := unknown[name]
				if names[name] {
					present = append(present, name)
				}
				GinkgoWriter.Printf("unknown outcome: %s via %s, in the state afterwards: %t: %v\n", name, w.Via.Name, names[name], w.Err)
			}
			failover := summarise(results, func(r round) time.Duration { return r.failover })
			election := summarise(results, func(r round) time.Duration { return r.election })
			report := fmt.Sprintf("%d failovers: kill to first acknowledged write p50 %v, max %v; kill to new leader p50 %v, max %v; %d writes acknowledged, 0 lost; %d of unknown outcome (%d of them applied)",
				len(results), failover.p50, failover.max, election.p50, election.max, len(acked), len(unknown), len(present))
			GinkgoWriter.Println(report)
			AddReportEntry("failover", report)
		})
	})
})

// killLeader runs one round: a write load through every manager, SIGKILL
// of the leader mid-write, the first write acknowledged after it, then the
// killed manager's restart and catch-up with acked (and this round's
// acknowledged writes).
func killLeader(ctx context.Context, c *proc.Cluster, i int, acked map[string]bool) round {
	GinkgoHelper()
	// One bound for every wait of the round.
	bound, cancel := context.WithTimeout(ctx, settleWithin)
	defer cancel()
	leader, err := c.Settled(bound, poll)
	Expect(err).NotTo(HaveOccurred())

	load, err := c.StartLoad(ctx, fmt.Sprintf("r%02d", i), pace)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(load.Abort) // a no-op after Stop; stops the writers if an assertion fails
	for _, m := range c.Managers {
		_, err := load.Await(bound, warmupAcks, func(w proc.Write) bool { return w.Via == m && w.Err == nil })
		Expect(err).NotTo(HaveOccurred(), "warm-up writes through %s", m.Name)
	}
	Expect(c.Leads(ctx, leader)).To(BeTrue(), "%s still leads after the warm-up", leader.Name)
	// Kill while every writer waits for an answer, most likely the
	// leader's commit.
	Expect(load.AwaitInFlight(bound, len(c.Managers), inFlightPoll)).To(Succeed())

	r := round{killed: leader}
	killedAt, err := leader.Kill()
	Expect(err).NotTo(HaveOccurred())
	elected, at, err := c.AwaitLeader(bound, poll)
	Expect(err).NotTo(HaveOccurred())
	r.elected, r.election = elected, at.Sub(killedAt)
	// Only the new leader can acknowledge a write sent after the kill.
	after := func(w proc.Write) bool { return w.Err == nil && !w.Start.Before(killedAt) }
	firstAcked, err := load.Await(bound, 1, after)
	Expect(err).NotTo(HaveOccurred(), "a write acknowledged after the kill")
	r.failover = firstAcked[0].End.Sub(killedAt)
	for _, m := range c.Managers {
		if m == leader {
			continue
		}
		_, err := load.Await(bound, afterAcks, func(w proc.Write) bool { return w.Via == m && after(w) })
		Expect(err).NotTo(HaveOccurred(), "writes through %s after the kill", m.Name)
	}

	restartedAt := time.Now()
	Expect(c.Restart(ctx, leader)).To(Succeed())
	// Its writer, which only knows it, gets through it to the new leader.
	_, err = load.Await(bound, 1, func(w proc.Write) bool {
		return w.Via == leader && w.Err == nil && !w.Start.Before(restartedAt)
	})
	Expect(err).NotTo(HaveOccurred(), "a write through the restarted %s", leader.Name)
	r.writes = load.Stop()

	want := maps.Clone(acked)
	for _, w := range r.writes {
		if w.Outcome() == proc.Acked {
			want[w.Name] = true
		}
	}
	only, err := c.Client(leader.APIAddr)
	Expect(err).NotTo(HaveOccurred())
	defer only.Close()
	Eventually(func() ([]string, error) {
		got, err := listWith(ctx, only, true)
		return missing(want, got), err
	}).WithContext(bound).WithPolling(20*time.Millisecond).Should(BeEmpty(), "the restarted %s's stale read", leader.Name)
	r.catchUp = time.Since(restartedAt)
	return r
}

// failures are the writes refused for good: every write through a
// failover must be applied or of unknown outcome.
func failures(writes []proc.Write) []string {
	var out []string
	for _, w := range writes {
		if w.Outcome() == proc.Failed {
			out = append(out, fmt.Sprintf("%s via %s: %v", w.Name, w.Via.Name, w.Err))
		}
	}
	return out
}

// list is the set of service names a client of every manager reads.
func list(ctx context.Context, c *proc.Cluster, stale bool) map[string]bool {
	GinkgoHelper()
	client, err := c.Client()
	Expect(err).NotTo(HaveOccurred())
	defer client.Close()
	got, err := listWith(ctx, client, stale)
	Expect(err).NotTo(HaveOccurred())
	return got
}

func listWith(ctx context.Context, client *api.Client, stale bool) (map[string]bool, error) {
	svcs, err := client.ListServices(ctx, stale)
	return names(svcs), err
}

func names(svcs []*types.Service) map[string]bool {
	out := make(map[string]bool, len(svcs))
	for _, s := range svcs {
		out[s.Name] = true
	}
	return out
}

// missing lists (the first few of) the names in want that got lacks.
func missing(want, got map[string]bool) []string {
	var out []string
	for name := range want {
		if !got[name] {
			out = append(out, name)
		}
	}
	return firstFew(out)
}

// extra lists (the first few of) the names in got that no write made,
// acknowledged or of unknown outcome.
func extra(got, acked map[string]bool, unknown map[string]proc.Write) []string {
	var out []string
	for name := range got {
		if _, ok := unknown[name]; !ok && !acked[name] {
			out = append(out, name)
		}
	}
	return firstFew(out)
}

// firstFew sorts names and keeps 20 (and a count of the rest), so that a
// failure message stays readable with thousands of services.
func firstFew(names []string) []string {
	slices.Sort(names)
	if len(names) > 20 {
		return append(names[:20], fmt.Sprintf("... and %d more", len(names)-20))
	}
	return names
}

// spread is the p50 (nearest rank: a duration that was measured) and the
// maximum of some durations.
type spread struct{ p50, max time.Duration }

func summarise(rs []round, of func(round) time.Duration) spread {
	ds := make([]time.Duration, len(rs))
	for i, r := range rs {
		ds[i] = of(r).Round(time.Millisecond)
	}
	slices.Sort(ds)
	if len(ds) == 0 {
		return spread{}
	}
	return spread{p50: ds[int(math.Ceil(float64(len(ds))/2))-1], max: ds[len(ds)-1]}
}

// printLogs prints the end of every manager's log and keeps whole copies
// outside the spec's temporary directory, which is removed.
func printLogs(c *proc.Cluster) {
	keep, err := os.MkdirTemp("", "warren-e2e-logs-")
	if err != nil {
		keep = ""
	}
	for _, m := range c.Managers {
		if keep != "" {
			if data, err := os.ReadFile(m.LogPath); err == nil {
				_ = os.WriteFile(filepath.Join(keep, m.Name+".log"), data, 0o644)
			}
		}
		GinkgoWriter.Printf("===== %s: the last %d lines of its log (whole in %s) =====\n%s\n",
			m.Name, logTail, filepath.Join(keep, m.Name+".log"), strings.TrimRight(m.Tail(logTail), "\n"))
	}
}
