package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// scenario is the path of a scenario file of the repository, from the
// package directory `go test` runs in.
func scenario(name string) string { return filepath.Join("..", "..", "..", "scenarios", name+".yaml") }

// writeScenario writes a scenario document to a temporary file and returns
// its path.
func writeScenario(text string) string {
	GinkgoHelper()
	path := filepath.Join(GinkgoT().TempDir(), "scenario.yaml")
	Expect(os.WriteFile(path, []byte(text), 0o644)).To(Succeed())
	return path
}

// runLine matches the line `warren sim` prints for a run of write-path
// with seed 1 and captures its hash.
var runLine = regexp.MustCompile(`(?m)^write-path seed=1 hash=([0-9a-f]{16}) pass \(`)

// write-path is the quickest scenario, so the specs that need a passing
// run use it; the broken variants fail within the first simulated seconds.
var _ = Describe("Sim", Label("sim"), func() {
	var (
		args           []string
		code           int
		stdout, stderr string
	)

	// Each When with specs that share one run acts in its own
	// JustBeforeEach; the tables run their own commands, and an outer
	// JustBeforeEach would run a stale command before every entry.
	act := func() { code, stdout, stderr = run(nil, append([]string{"sim"}, args...)...) }

	When("a scenario passes", func() {
		BeforeEach(func() { args = []string{scenario("write-path")} })
		JustBeforeEach(act)

		It("exits 0 and prints the run, its hash and the summary", func() {
			Expect(code).To(Equal(0), stderr)
			Expect(stdout).To(MatchRegexp(runLine.String()))
			Expect(stdout).To(ContainSubstring("write-path seed=1 hash="))
			Expect(stdout).To(MatchRegexp(`(?m)^1 runs: 1 passed, 0 failed \(`))
			Expect(stderr).To(BeEmpty())
		})

		It("prints the same hash for the same seed, and another for another seed", func() {
			first := runLine.FindStringSubmatch(stdout)
			Expect(first).To(HaveLen(2), stdout)

			_, again, _ := run(nil, append([]string{"sim"}, args...)...)
			second := runLine.FindStringSubmatch(again)
			Expect(second).To(HaveLen(2), again)
			Expect(second[1]).To(Equal(first[1]))

			c, other, _ := run(nil, "sim", scenario("write-path"), "--seed", "2")
			Expect(c).To(Equal(0))
			m := regexp.MustCompile(`(?m)^write-path seed=2 hash=([0-9a-f]{16}) pass`).FindStringSubmatch(other)
			Expect(m).To(HaveLen(2), other)
			Expect(m[1]).NotTo(Equal(first[1]))
		})
	})

	When("several seeds run quietly with the determinism check", func() {
		BeforeEach(func() {
			args = []string{scenario("write-path"), "--runs", "3", "--check-determinism", "--quiet"}
		})
		JustBeforeEach(act)

		It("exits 0 and prints only the summary", func() {
			Expect(code).To(Equal(0), stdout)
			Expect(stdout).To(MatchRegexp(`^3 runs: 3 passed, 0 failed \([^\n]*\)\n$`))
		})
	})

	When("a deliberately broken variant runs", func() {
		DescribeTable("exits 2 with the broken invariant and a replay line",
			func(name, variant, invariant string) {
				code, stdout, stderr := run(nil, "sim", scenario(name), "--broken", variant)
				Expect(code).To(Equal(2), stdout)
				Expect(stdout).To(MatchRegexp(`(?m)^` + name + ` seed=1 hash=[0-9a-f]{16} invariant \(`))
				Expect(stdout).To(ContainSubstring(`invariant "` + invariant + `" broken at `))
				Expect(stdout).To(ContainSubstring("replay: warren sim " + scenario(name) + " --seed 1 --broken " + variant + "\n"))
				Expect(stdout).To(MatchRegexp(`(?m)^1 runs: 0 passed, 1 failed \(`))
				Expect(stderr).To(Equal("Error: 1 of 1 runs failed; worst: invariant\n"))
			},
			Entry("acknowledging before commit", "partition", "ack-before-commit", "no acknowledged write is lost"),
			Entry("ignoring volume affinity", "volume-affinity", "ignore-volumes", "a task with a local volume runs on its node"),
			Entry("no failover grace", "leader-failover", "no-failover-grace", "no node is marked down while it is up"),
		)
	})

	When("a scenario misses an expectation", func() {
		BeforeEach(func() {
			b, err := os.ReadFile(scenario("write-path"))
			Expect(err).NotTo(HaveOccurred())
			bound := regexp.MustCompile(`(?m)^(\s*write-p99-under:) \S+$`)
			Expect(bound.Match(b)).To(BeTrue(), "write-path.yaml no longer bounds the write p99")
			args = []string{writeScenario(bound.ReplaceAllString(string(b), "$1 1us"))}
		})
		JustBeforeEach(act)

		It("exits 3 and says which", func() {
			Expect(code).To(Equal(3), stdout)
			Expect(stdout).To(MatchRegexp(`(?m)^write-path seed=1 hash=[0-9a-f]{16} liveness \(`))
			Expect(stdout).To(ContainSubstring("expected under 1µs"))
			Expect(stdout).To(ContainSubstring("replay: warren sim "+args[0]+" --seed 1\n"), "the file as it was named")
			Expect(stderr).To(Equal("Error: 1 of 1 runs failed; worst: liveness\n"))
		})
	})

	When("the usage is wrong", func() {
		DescribeTable("exits 1 with a message and runs nothing",
			func(args []string, want string) {
				code, stdout, stderr := run(nil, append([]string{"sim"}, args...)...)
				Expect(code).To(Equal(1))
				Expect(stdout).To(BeEmpty())
				Expect(stderr).To(HavePrefix("Error: "))
				Expect(stderr).To(ContainSubstring(want))
				Expect(strings.Count(stderr, "\n")).To(Equal(1), "one error line: %q", stderr)
			},
			Entry("no file", nil, "requires at least 1 arg"),
			Entry("a missing file", []string{scenario("no-such-scenario")}, "no-such-scenario.yaml: no such file"),
			Entry("--runs 0", []string{scenario("write-path"), "--runs", "0"}, "--runs is 0: run at least 1 seed"),
			Entry("--broken nonsense", []string{scenario("write-path"), "--broken", "nonsense"},
				`--broken "nonsense": use ack-before-commit, no-failover-grace, ignore-volumes, extra-fsync, secrets-every-node, secrets-latest, secrets-linger or secrets-none`),
			Entry("--trace with several runs", []string{scenario("write-path"), "--trace", "x", "--runs", "2"},
				"--trace writes one run's trace: give one file and --runs 1"),
		)
	})

	When("a scenario file has an unknown field", func() {
		BeforeEach(func() {
			args = []string{writeScenario(`name: typo
cluster: {managers: 3, wrokers: 2}
duration: 5s
expect: {converge-within: 5s}
`)}
		})
		JustBeforeEach(act)

		It("exits 1 naming the field", func() {
			Expect(code).To(Equal(1))
			Expect(stdout).To(BeEmpty())
			Expect(stderr).To(HavePrefix("Error: sim: " + args[0] + ": "))
			Expect(stderr).To(ContainSubstring(`unknown field "wrokers"`))
		})
	})

	When("asked for a trace and a report", func() {
		var tracePath, reportPath string

		BeforeEach(func() {
			dir := GinkgoT().TempDir()
			tracePath, reportPath = filepath.Join(dir, "run.trace"), filepath.Join(dir, "run.html")
			args = []string{scenario("write-path"), "--trace", tracePath, "--report", reportPath}
		})
		JustBeforeEach(act)

		It("writes the trace, every line stamped with the simulated time in microseconds", func() {
			Expect(code).To(Equal(0), stdout)
			b, err := os.ReadFile(tracePath)
			Expect(err).NotTo(HaveOccurred())
			lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			Expect(lines[0]).NotTo(BeEmpty())
			stamp := regexp.MustCompile(`^ *(\d+) \S`)
			last := int64(-1)
			for _, l := range lines {
				m := stamp.FindStringSubmatch(l)
				Expect(m).To(HaveLen(2), "line %q", l)
				us, err := strconv.ParseInt(m[1], 10, 64)
				Expect(err).NotTo(HaveOccurred())
				Expect(us).To(BeNumerically(">=", last), "time goes backwards at %q", l)
				last = us
			}
			// A microsecond stamp, not milliseconds or seconds: the leader
			// is elected within the first simulated second, after 1 ms.
			Expect(last).To(BeNumerically(">", 1000))
		})

		It("writes an HTML report with the timeline and the replay command", func() {
			Expect(code).To(Equal(0), stdout)
			b, err := os.ReadFile(reportPath)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(b)).To(HavePrefix("<!DOCTYPE html>"))
			Expect(string(b)).To(ContainSubstring("<svg"))
			Expect(string(b)).To(ContainSubstring("warren sim " + scenario("write-path") + " --seed 1"))
		})
	})
})
