package raftsim_test

import (
	"errors"
	"fmt"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	wraft "github.com/warren-orchestrator/warren/backends/raft"
	"github.com/warren-orchestrator/warren/sim"
	"github.com/warren-orchestrator/warren/sim/raftsim"
)

// load reads a scenario of scenarios/ or, for "testdata/NAME", of this
// package's testdata.
func load(name string) *sim.Scenario {
	GinkgoHelper()
	path := filepath.Join("..", "..", "scenarios", name+".yaml")
	if filepath.Dir(name) == "testdata" {
		path = name + ".yaml"
	}
	sc, err := sim.LoadScenario(path)
	Expect(err).NotTo(HaveOccurred())
	return sc
}

var _ = Describe("Run", Label("sim"), func() {
	DescribeTable("holds every invariant on real raft and bolt, and converges",
		func(name string, seeds uint64) {
			sc := load(name)
			if raceEnabled {
				seeds = 1
			}
			for seed := uint64(1); seed <= seeds; seed++ {
				out := raftsim.Run(raftsim.SuiteT(), sc, seed, raftsim.Options{})
				fmt.Fprintln(GinkgoWriter, out)
				Expect(out.Kind).To(Equal(sim.Pass), "%v\n%s\n%s", out, out.Log(), out.Stacks)
				Expect(out.Elapsed).To(BeNumerically(">=", sc.Duration.D()), "virtual time covers the scenario")
				Expect(out.History.Writes).To(BeNumerically(">", 100))
				Expect(out.History.Reads).To(BeNumerically(">", 10))
				Expect(len(out.Elections) - 1).To(BeNumerically(">=", sc.Expect.LeaderChangesMin))
			}
		},
		Entry("leader-failover.yaml", "leader-failover", uint64(4)),
		Entry("partition.yaml", "partition", uint64(4)),
		Entry("chaos.yaml", "chaos", uint64(10)),
		Entry("five managers, two of them down and one cut off at once", "testdata/five-managers", uint64(2)),
		Entry("the quorum that acknowledged the last writes restarts", "testdata/quorum-restart", uint64(3)),
	)

	It("replays a seed's fault schedule, drawn before the cluster starts", func() {
		sc := load("chaos")
		plan := raftsim.PlanOf(sc, 3)
		Expect(raftsim.PlanOf(sc, 3)).To(Equal(plan))
		Expect(raftsim.PlanOf(sc, 4)).NotTo(Equal(plan))
		Expect(plan).To(ContainElement(ContainSubstring("chaos latency-max=")))
		out := raftsim.Run(raftsim.SuiteT(), sc, 3, raftsim.Options{})
		Expect(out.Plan).To(Equal(plan))
	})
})

var _ = Describe("The checks", Label("sim"), func() {
	// A broken variant must be caught within a few seeds (each is caught by
	// the first today).
	DescribeTable("catch a deliberately broken manager",
		func(scenario string, broken raftsim.Broken, message types.GomegaMatcher) {
			sc := load(scenario)
			var caught *raftsim.Outcome
			for seed := uint64(1); seed <= 5 && caught == nil; seed++ {
				if out := raftsim.Run(raftsim.SuiteT(), sc, seed, raftsim.Options{Broken: broken}); out.Kind != sim.Pass {
					caught = out
				}
			}
			Expect(caught).NotTo(BeNil(), "no seed of 5 caught it")
			fmt.Fprintln(GinkgoWriter, caught)
			Expect(caught.Kind).To(Equal(sim.Safety), "%v", caught)
			var v *sim.Violation
			Expect(errors.As(caught.Err, &v)).To(BeTrue())
			Expect(v.Invariant).To(message)
		},
		Entry("acknowledging a write before it commits", "partition", raftsim.BrokenAckBeforeCommit,
			Equal("no acknowledged write is lost")),
		Entry("serving reads from any manager's store, without a Barrier", "leader-failover", raftsim.BrokenStaleRead,
			Equal("the client history is linearizable")),
		// Which check fires first depends on the run: the restarted managers
		// vote twice in a term, or let the stale manager lead and overwrite
		// acknowledged entries.
		Entry("forgetting raft.db on restart", "testdata/quorum-restart", raftsim.BrokenForgetfulRestart,
			BeElementOf("one leader per term", "no acknowledged write is lost", "committed entries agree")),
	)
})

var _ = Describe("Failpoints", Label("sim", "failpoints"), func() {
	It("strike inside backends/raft in a failpoint build, and every invariant holds", func() {
		if !raftsim.FailpointsBuilt() {
			Skip("this test binary was built without failpoint-toolexec, so the failpoint markers of backends/raft are no-ops: " +
				"`make chaos` runs them from bin/warren-failpoints; for this spec, run " +
				"GOCACHE=$(go env GOCACHE)-failpoints go test -toolexec=$PWD/bin/tools/failpoint-toolexec ./sim/raftsim -args -ginkgo.label-filter=failpoints")
		}
		sc := load("leader-failover")
		out := raftsim.Run(raftsim.SuiteT(), sc, 1, raftsim.Options{Failpoints: true})
		fmt.Fprintln(GinkgoWriter, out)
		Expect(out.Kind).To(Equal(sim.Pass), "%v\n%s\n%s", out, out.Log(), out.Stacks)
		Expect(out.Failpoints).To(HaveLen(len(wraft.Failpoints)))
		acted := 0
		for _, name := range wraft.Failpoints {
			h := out.Failpoints[name]
			Expect(h.Hits).To(BeNumerically(">", 0), "failpoint %s never hit", name)
			acted += h.Delays + h.Crashes + h.Errors
		}
		Expect(acted).To(BeNumerically(">", 0), "no hit was acted on")
		Expect(out.Plan).To(ContainElement(ContainSubstring("crash the next manager to pass failpoint")))
		Expect(out.String()).To(ContainSubstring("failpoints: "))
	})

	It("says so when a run asks for failpoints the build does not have", func() {
		if raftsim.FailpointsBuilt() {
			Skip("this binary has failpoints")
		}
		out := raftsim.Run(raftsim.SuiteT(), load("testdata/quorum-restart"), 1, raftsim.Options{Failpoints: true})
		Expect(out.Kind).To(Equal(sim.Pass), "%v\n%s", out, out.Log())
		Expect(out.Failpoints).To(BeNil())
		Expect(out.String()).To(ContainSubstring("failpoints: none built in"))
	})
})
