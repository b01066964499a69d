package bench

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/sim"
)

const (
	// chaos50 is scenarios/chaos.yaml at benchmark scale: 3 managers, 10
	// workers and 50 services under the same drawn faults.
	chaos50 = "testdata/chaos-50.yaml"
	// leaderFailover is the scenario whose seeds `make chaos` runs most.
	leaderFailover = "../scenarios/leader-failover.yaml"
	// seedBudget is the wall time a seed sweep is given, for seeds-per-2min.
	seedBudget = 2 * time.Minute
)

// runSeeds runs seeds 1..b.N of the scenario at path, one per iteration on
// one goroutine, fails the benchmark on the first run that does not pass,
// and reports the simulator's speed: "sim-x" (simulated seconds per wall
// second), "events/s" and "ms/run". It returns the wall time per run.
func runSeeds(b *testing.B, path string) time.Duration {
	b.Helper()
	sc, err := sim.LoadScenario(path)
	if err != nil {
		b.Fatal(err)
	}
	var simulated time.Duration
	var events uint64
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		out := sc.Run(uint64(i+1), sim.RunOptions{})
		if out.Kind != sim.Pass {
			b.Fatalf("%v", out)
		}
		simulated += out.Elapsed
		events += out.Steps
	}
	b.StopTimer()
	wall := b.Elapsed()
	perRun := wall / time.Duration(b.N)
	b.ReportMetric(simulated.Seconds()/wall.Seconds(), "sim-x")
	b.ReportMetric(float64(events)/wall.Seconds(), "events/s")
	b.ReportMetric(float64(perRun)/float64(time.Millisecond), "ms/run")
	return perRun
}

// BenchmarkSim measures how fast the simulator runs a larger cluster under
// chaos: 3 managers, 10 workers, 50 services, 30 s of random faults and
// then convergence, one seed per iteration.
func BenchmarkSim(b *testing.B) {
	runSeeds(b, chaos50)
}

// BenchmarkSimLeaderFailover measures seeds of leader-failover.yaml, and
// how many of them one core gets through in a two-minute sweep.
func BenchmarkSimLeaderFailover(b *testing.B) {
	perRun := runSeeds(b, leaderFailover)
	b.ReportMetric(float64(seedBudget)/float64(perRun), "seeds-per-2min")
}

var _ = Describe("The chaos-50 benchmark scenario", Label("sim"), func() {
	var sc *sim.Scenario

	BeforeEach(func() {
		var err error
		sc, err = sim.LoadScenario(chaos50)
		Expect(err).NotTo(HaveOccurred())
	})

	It("has 3 managers, 10 workers and 50 services of every kind", func() {
		Expect(sc.Cluster.Managers).To(Equal(3))
		Expect(sc.Cluster.Workers).To(Equal(10))
		var services, global, onVolumes, constrained int
		for _, st := range sc.Steps {
			Expect(st.Volume).To(BeNil(), "volumes are created lazily, with their first task")
			s := st.Service
			if s == nil {
				continue
			}
			services++
			switch {
			case s.Mode == "global":
				global++
			case len(s.Volumes) > 0:
				onVolumes++
			default:
				Expect(s.Replicas).To(BeNumerically("~", 2, 1), s.Name)
			}
			if len(s.Constraints) > 0 {
				constrained++
			}
		}
		Expect(services).To(Equal(50))
		Expect(global).To(Equal(2), "global services multiply the tasks by the workers")
		Expect(onVolumes).To(Equal(5))
		Expect(constrained).To(BeNumerically(">", 0))
	})

	It("draws its faults as scenarios/chaos.yaml does", func() {
		chaos, err := sim.LoadScenario("../scenarios/chaos.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(sc.Chaos).To(Equal(chaos.Chaos))
		Expect(sc.Duration).To(Equal(chaos.Duration))
		Expect(sc.Expect).To(Equal(chaos.Expect))
	})

	// BenchmarkSim fails on a seed that does not pass; checking one here
	// finds a broken fixture before someone runs the benchmarks.
	It("passes with seed 1", func() {
		out := sc.Run(1, sim.RunOptions{})
		Expect(out.Kind).To(Equal(sim.Pass), "%v", out)
	})
})
