package sim_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/net/html"

	"github.com/warren-orchestrator/warren/sim"
)

// seedsPerScenario is how many seeds `go test` runs of each scenario; `make
// chaos` runs hundreds, with the determinism check.
const seedsPerScenario = 8

func scenarioFiles() []string {
	files, err := filepath.Glob("../scenarios/*.yaml")
	Expect(err).NotTo(HaveOccurred())
	Expect(files).NotTo(BeEmpty())
	return files
}

func load(name string) *sim.Scenario {
	GinkgoHelper()
	sc, err := sim.LoadScenario(filepath.Join("..", "scenarios", name+".yaml"))
	Expect(err).NotTo(HaveOccurred())
	return sc
}

var _ = Describe("Scenarios", Label("sim"), func() {
	for _, file := range []string{"leader-failover", "volume-affinity", "secret-delivery", "write-path", "worker-crash", "partition", "unhealthy", "chaos"} {
		It(file+" holds every invariant and converges, the same way every time", func() {
			sc := load(file)
			for seed := uint64(1); seed <= seedsPerScenario; seed++ {
				out := sc.Run(seed, sim.RunOptions{})
				Expect(out.Kind).To(Equal(sim.Pass), "%v", out)
				again := sc.Run(seed, sim.RunOptions{})
				Expect(again.Hash).To(Equal(out.Hash), "seed %d is not deterministic", seed)
			}
		})
	}

	It("covers every scenario file in scenarios/", func() {
		Expect(scenarioFiles()).To(HaveLen(8))
	})
})

var _ = Describe("The checks", Label("sim"), func() {
	// Each broken variant must be caught by some seed within 500 runs.
	DescribeTable("catch a deliberately broken system",
		func(scenario string, broken sim.Broken, kind, message string) {
			sc := load(scenario)
			var caught *sim.Outcome
			for seed := uint64(1); seed <= 500 && caught == nil; seed++ {
				if out := sc.Run(seed, sim.RunOptions{Broken: broken}); out.Kind != sim.Pass {
					caught = out
				}
			}
			Expect(caught).NotTo(BeNil(), "no seed of 500 caught it")
			Expect(caught.Kind).To(Equal(kind))
			Expect(caught.Err).To(MatchError(ContainSubstring(message)))
			Expect(caught.Replay()).To(ContainSubstring("--seed"))
		},
		Entry("a Raft that acknowledges before commit", "partition", sim.BrokenAckBeforeCommit,
			sim.Safety, "no acknowledged write is lost"),
		Entry("a dispatcher without the failover grace", "leader-failover", sim.BrokenNoFailoverGrace,
			sim.Safety, "no node is marked down while it is up"),
		Entry("one more fsync on the commit path", "write-path", sim.BrokenExtraFsync,
			sim.Liveness, "write latency p99"),
		// Caught at the plan, before the fsm (which refuses such plans too).
		Entry("a scheduler that ignores volume affinity", "volume-affinity", sim.BrokenIgnoreVolumes,
			sim.Safety, "away from volume"),
		Entry("a leader that sends every secret to every node", "secret-delivery", sim.BrokenSecretsEveryNode,
			sim.Safety, "which does not use it"),
		Entry("a leader that sends the newest version, not the task's", "secret-delivery", sim.BrokenSecretsLatest,
			sim.Safety, "which the task was made with"),
		Entry("a runtime that keeps the secrets of stopped tasks", "secret-delivery", sim.BrokenSecretsLinger,
			sim.Safety, "whose container"),
		Entry("a leader that sends no secret", "secret-delivery", sim.BrokenSecretsNone,
			sim.Liveness, "runs without version"),
	)
})

// eventTexts are the events of a run, "NODE: TEXT" (": TEXT" cluster-wide).
func eventTexts(out *sim.Outcome) []string {
	var all []string
	for _, e := range out.Timeline.Events {
		all = append(all, e.Node+": "+e.Text)
	}
	return all
}

// indexOf is the index of the first text matching pattern, or -1.
func indexOf(all []string, pattern string) int {
	re := regexp.MustCompile(pattern)
	return slices.IndexFunc(all, re.MatchString)
}

// The scenarios hold every invariant only if they also do what they claim
// to test: these read it from their timelines.
var _ = Describe("What the scenarios exercise", Label("sim"), func() {
	It("volume-affinity creates a volume lazily, deletes it with force, and creates it again lazily", func() {
		sc := load("volume-affinity")
		for seed := uint64(1); seed <= seedsPerScenario; seed++ {
			out := sc.Run(seed, sim.RunOptions{})
			Expect(out.Kind).To(Equal(sim.Pass), "%v", out)
			all := eventTexts(out)
			Expect(all).To(ContainElement("worker-1: volume db-data created here (incarnation 1)"), "seed %d", seed)
			first := indexOf(all, `^worker-\d: volume cache-data created lazily here with its first task \(incarnation 1\)$`)
			deleted := indexOf(all, `^: volume cache-data deleted \(incarnation 1\)$`)
			again := indexOf(all, `^worker-\d: volume cache-data created lazily here with its first task \(incarnation 2\)$`)
			Expect([]int{first, deleted, again}).To(HaveEach(BeNumerically(">=", 0)), "seed %d: %v", seed, all)
			Expect(first).To(BeNumerically("<", deleted), "seed %d", seed)
			Expect(deleted).To(BeNumerically("<", again), "seed %d", seed)
		}
	})

	It("secret-delivery delivers every version it makes, and a secret made again under an old name", func() {
		sc := load("secret-delivery")
		for seed := uint64(1); seed <= seedsPerScenario; seed++ {
			out := sc.Run(seed, sim.RunOptions{})
			Expect(out.Kind).To(Equal(sim.Pass), "%v", out)
			all := eventTexts(out)
			for _, held := range []string{
				`db-password \(sec-db-password\) v1`, `db-password \(sec-db-password\) v2`,
				`api-key \(sec-api-key\) v1`, `api-key \(sec-api-key.2\) v1`,
			} {
				Expect(indexOf(all, `^worker-\d: holds secret `+held+`$`)).To(BeNumerically(">=", 0), "seed %d: no node held %s", seed, held)
			}
			Expect(indexOf(all, `holds secret unused `)).To(Equal(-1), "no task uses it")
		}
	})
})

var _ = Describe("A scenario's report", Label("sim"), func() {
	It("is a well-formed page for a real run", func() {
		out := load("leader-failover").Run(3, sim.RunOptions{})
		var b bytes.Buffer
		Expect(sim.WriteReport(&b, out.Timeline)).To(Succeed())
		_, err := html.Parse(bytes.NewReader(b.Bytes()))
		Expect(err).NotTo(HaveOccurred())
		page := b.String()
		Expect(page).To(ContainSubstring("warren sim ../scenarios/leader-failover.yaml --seed 3"))
		Expect(strings.Count(page, "<svg")).To(BeNumerically(">=", 2))
		Expect(out.Timeline.Leaders).To(HaveLen(3), "two crashes of the leader: three terms with leaders")
		Expect(out.Timeline.Writes).NotTo(BeEmpty())
	})
})

var _ = Describe("ParseScenario", func() {
	DescribeTable("refuses a bad scenario, saying what to fix",
		func(doc, message string) {
			_, err := sim.ParseScenario([]byte(doc))
			Expect(err).To(MatchError(ContainSubstring(message)))
		},
		Entry("unknown field", "cluster: {managers: 3}\nduration: 5s\nexpect: {converge-within: 5s}\nsteps: [{at: 0s, hela: {}}]", "unknown field"),
		Entry("two actions in a step", "cluster: {managers: 3}\nduration: 5s\nexpect: {converge-within: 5s}\nsteps: [{at: 0s, heal: {}, crash: {node: leader}}]", "exactly one of"),
		Entry("no duration", "cluster: {managers: 3}\nexpect: {converge-within: 5s}", "duration is missing"),
		Entry("bad duration", "cluster: {managers: 3}\nduration: five\nexpect: {converge-within: 5s}", `"five" is not a duration`),
		Entry("no managers", "duration: 5s\nexpect: {converge-within: 5s}", "cluster.managers is 0"),
		Entry("no liveness bound", "cluster: {managers: 3}\nduration: 5s", "expect.converge-within is missing"),
		Entry("unknown chaos", "cluster: {managers: 3}\nduration: 5s\nexpect: {converge-within: 5s}\nchaos: {faults: 1, kinds: [meteor]}", `chaos.kinds has "meteor"`),
		Entry("unhealthy without a span", "cluster: {managers: 3}\nduration: 5s\nexpect: {converge-within: 5s}\nsteps: [{at: 0s, unhealthy: {node: worker-1}}]", "say for how long"),
		Entry("a delete without a name", "cluster: {managers: 3}\nduration: 5s\nexpect: {converge-within: 5s}\nsteps: [{at: 0s, delete-volume: {force: true}}]", "name what to delete"),
		Entry("a service deleted with force", "cluster: {managers: 3}\nduration: 5s\nexpect: {converge-within: 5s}\nsteps: [{at: 0s, delete-service: {name: web, force: true}}]", "drop force"),
		Entry("step after the end", "cluster: {managers: 3}\nduration: 5s\nexpect: {converge-within: 5s}\nsteps: [{at: 9s, heal: {}}]", "after the duration"),
	)

	It("reads every scenario in scenarios/", func() {
		for _, f := range scenarioFiles() {
			_, err := sim.LoadScenario(f)
			Expect(err).NotTo(HaveOccurred(), f)
		}
		_, err := sim.LoadScenario("../scenarios/nope.yaml")
		Expect(errors.Is(err, errors.ErrUnsupported) || err != nil).To(BeTrue())
	})
})
