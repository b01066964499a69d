package sim_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/net/html"

	"github.com/warren-orchestrator/warren/sim"
)

const (
	hostileScenario = `leader-loss <script>&"x"`
	hostileEvent    = `<script>alert("pwned")</script> & w3 crashed`
	failure         = `invariant "one leader per term": m1 & m2 both led term 2 <b>`
	pageLimitBytes  = 2 << 20
)

// smallRun is 60 s of 3 managers (a leader change from m1 in term 1 to m2 in
// term 2), a partition and a crash, 5 workers, 300 writes of which 12 were
// lost, and events whose text is markup.
func smallRun() *sim.Timeline {
	tl := &sim.Timeline{
		Scenario:  hostileScenario,
		Seed:      42,
		TraceHash: "9f86d081884c7d659a2feaa0c55ad015",
		Result:    failure,
		End:       60 * time.Second,
		Managers:  []string{"m1", "m2", "m3"},
		Workers:   []string{"w1", "w2", "w3", "w4", "w5"},
		Leaders: []sim.LeaderSpan{
			{Manager: "m1", Term: 1, From: 200 * time.Millisecond, To: 20 * time.Second},
			{Manager: "m2", Term: 2, From: 20300 * time.Millisecond},
		},
		Faults: []sim.FaultSpan{
			{Kind: "partition", Target: "m1|m2,m3", From: 10 * time.Second, To: 20 * time.Second},
			{Kind: "crash", Target: "w3", From: 30 * time.Second},
		},
		Events: []sim.Event{
			{At: 200 * time.Millisecond, Node: "m1", Text: "elected leader of term 1"},
			{At: 10 * time.Second, Text: "partition m1 | m2,m3"},
			{At: 20300 * time.Millisecond, Node: "m2", Text: "elected leader of term 2"},
			{At: 30 * time.Second, Node: "w3", Text: hostileEvent},
			{At: 59 * time.Second, Node: "m2", Text: failure},
		},
	}
	for i := range 601 {
		at := time.Duration(i) * 100 * time.Millisecond
		running := map[string]int{}
		for j, w := range tl.Workers {
			running[w] = 2 + (i/100+j)%3
			if w == "w3" && at >= 30*time.Second {
				running[w] = 0
			}
		}
		tl.Tasks = append(tl.Tasks, sim.TaskSample{At: at, Running: running})
	}
	for i := range 300 {
		at := time.Duration(i) * 200 * time.Millisecond
		w := sim.WriteSample{At: at, Latency: time.Duration(i%7+1) * time.Millisecond, Acked: i%25 != 0}
		if at >= 10*time.Second && at < 20*time.Second {
			w.Latency = 1500 * time.Millisecond
		}
		tl.Writes = append(tl.Writes, w)
	}
	return tl
}

// bigRun is the size budget's case: 60 s, 3 managers, 10 workers sampled
// every 10 ms, writes, and 2,000 events.
func bigRun(writes int) *sim.Timeline {
	rng := rand.New(rand.NewPCG(1, 2))
	tl := &sim.Timeline{Scenario: "big", Seed: 1, Result: "pass", End: 60 * time.Second, Managers: []string{"m1", "m2", "m3"}}
	for i := range 10 {
		tl.Workers = append(tl.Workers, fmt.Sprintf("worker-%02d", i))
	}
	for term := range 6 {
		tl.Leaders = append(tl.Leaders, sim.LeaderSpan{
			Manager: tl.Managers[term%3], Term: uint64(term + 1),
			From: time.Duration(term) * 10 * time.Second, To: time.Duration(term+1)*10*time.Second - 300*time.Millisecond,
		})
	}
	for i := range 6000 {
		running := map[string]int{}
		for _, w := range tl.Workers {
			running[w] = rng.IntN(20)
		}
		tl.Tasks = append(tl.Tasks, sim.TaskSample{At: time.Duration(i) * 10 * time.Millisecond, Running: running})
	}
	for i := range writes {
		latency := time.Duration(math.Pow(10, 6+3.3*rng.Float64())) // 1 ms to 2 s, log-uniform
		tl.Writes = append(tl.Writes, sim.WriteSample{
			At: time.Duration(i) * tl.End / time.Duration(writes), Latency: latency, Acked: rng.IntN(50) != 0,
		})
	}
	for i := range 2000 {
		tl.Events = append(tl.Events, sim.Event{
			At:   time.Duration(i) * 30 * time.Millisecond,
			Node: tl.Workers[i%10],
			Text: fmt.Sprintf("task svc-%d.%d moved from running to shutdown after a heartbeat miss", i%40, i),
		})
	}
	return tl
}

func render(tl *sim.Timeline) []byte {
	GinkgoHelper()
	var b bytes.Buffer
	Expect(sim.WriteReport(&b, tl)).To(Succeed())
	return b.Bytes()
}

func parse(page []byte) *html.Node {
	GinkgoHelper()
	doc, err := html.Parse(bytes.NewReader(page))
	Expect(err).NotTo(HaveOccurred())
	return doc
}

// elements returns the elements of doc named name, in document order.
func elements(doc *html.Node, name string) []*html.Node {
	var out []*html.Node
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == name {
			out = append(out, n)
		}
	}
	return out
}

// texts returns the text content of each element of doc named name.
func texts(doc *html.Node, name string) []string {
	var out []string
	for _, n := range elements(doc, name) {
		out = append(out, text(n))
	}
	return out
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

// ownText is the text directly inside n, without that of its children
// (an SVG label's tooltip is a <title> child).
func ownText(n *html.Node) string {
	var b strings.Builder
	for c := range n.ChildNodes() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return b.String()
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// withClass returns the elements of doc whose class list has class.
func withClass(doc *html.Node, class string) []*html.Node {
	var out []*html.Node
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && slices.Contains(strings.Fields(attr(n, "class")), class) {
			out = append(out, n)
		}
	}
	return out
}

var _ = Describe("WriteReport", Label("sim"), func() {
	var (
		tl   *sim.Timeline
		page []byte
		doc  *html.Node
	)

	BeforeEach(func() {
		tl = smallRun()
	})

	JustBeforeEach(func() {
		page = render(tl)
		doc = parse(page)
	})

	When("a run had a leader change, faults and markup in its texts", func() {
		It("is one page with a heading, two charts, and nothing to run or fetch", func() {
			Expect(elements(doc, "h1")).To(HaveLen(1))
			Expect(elements(doc, "svg")).To(HaveLen(2), "the swim lanes and the write latencies")
			Expect(elements(doc, "script")).To(BeEmpty())
			for n := range doc.Descendants() {
				for _, a := range n.Attr {
					if a.Key == "src" || a.Key == "href" {
						Expect(strings.ToLower(a.Val)).NotTo(Or(HavePrefix("http:"), HavePrefix("https:"), HavePrefix("//")),
							"<%s %s=...>", n.Data, a.Key)
					}
				}
			}
			Expect(string(page)).NotTo(Or(ContainSubstring("url("), ContainSubstring("@import")))
		})

		It("escapes the scenario name, the result and event texts", func() {
			Expect(strings.ToLower(string(page))).NotTo(ContainSubstring("<script"))
			Expect(string(page)).To(ContainSubstring("&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; &amp; w3 crashed"))
			Expect(texts(doc, "h1")).To(Equal([]string{hostileScenario}))
			Expect(texts(doc, "td")).To(ContainElement(hostileEvent))
		})

		It("shows the failure in red and a replay command that pastes into a shell", func() {
			result := withClass(doc, "result")
			Expect(result).To(HaveLen(1))
			Expect(text(result[0])).To(Equal(failure))
			Expect(strings.Fields(attr(result[0], "class"))).To(ContainElement("fail"))
			Expect(texts(doc, "code")).To(ContainElement(`warren sim 'scenarios/leader-loss <script>&"x".yaml' --seed 42`))
			Expect(texts(doc, "code")).To(ContainElement(tl.TraceHash))
		})

		It("draws both terms, both faults and every node", func() {
			var labels []string
			for _, n := range elements(doc, "text") {
				labels = append(labels, ownText(n))
			}
			Expect(labels).To(ContainElements("term 1", "term 2", "m1", "m2", "m3", "w1", "w2", "w3", "w4", "w5"))
			Expect(texts(doc, "title")).To(ContainElements(
				"m1 led term 1 from 0.200s to 20.000s",
				"m2 led term 2 from 20.300s to 60.000s",
				"partition m1|m2,m3 from 10.000s to 20.000s",
				"crash w3 at 30.000s",
			))
			Expect(withClass(doc, "band")).To(HaveLen(2), "the partition across both charts; the crash is instantaneous")
			Expect(withClass(doc, "instant")).To(HaveLen(2), "the crash across both charts")
			Expect(withClass(doc, "tasks")).To(HaveLen(5))
		})

		It("plots acknowledged and lost writes with p50 and p99", func() {
			Expect(withClass(doc, "acked")).To(HaveLen(1))
			Expect(attr(withClass(doc, "acked")[0], "d")).NotTo(BeEmpty())
			Expect(strings.Count(attr(withClass(doc, "lost")[0], "d"), "M")).To(Equal(12), "a cross per lost write")
			Expect(withClass(doc, "pct")).To(HaveLen(2))
			Expect(texts(doc, "figcaption")).To(ContainElement(SatisfyAll(
				ContainSubstring("300 client writes: 288 acknowledged"),
				ContainSubstring("12 lost"),
				ContainSubstring(fmt.Sprintf("p50 %s, p99 %s", tl.WriteLatencyPercentile(50), tl.WriteLatencyPercentile(99))),
			)))
			Expect(tl.WriteLatencyPercentile(99)).To(Equal(1500*time.Millisecond), "the partition's writes")
		})

		It("renders the same bytes for the same timeline", func() {
			Expect(render(smallRun())).To(Equal(page))
		})
	})

	When("the run passed", func() {
		BeforeEach(func() {
			tl.Scenario, tl.Seed, tl.Result = "partition-heal", 7, "pass"
		})

		It("says pass in green and quotes nothing in the replay command", func() {
			result := withClass(doc, "result")
			Expect(result).To(HaveLen(1))
			Expect(text(result[0])).To(Equal("pass"))
			Expect(strings.Fields(attr(result[0], "class"))).To(ContainElement("pass"))
			Expect(string(page)).To(ContainSubstring("warren sim scenarios/partition-heal.yaml --seed 7"))
		})
	})

	When("the timeline is empty", func() {
		BeforeEach(func() {
			tl = &sim.Timeline{}
		})

		It("still renders both charts and says nothing was recorded", func() {
			Expect(elements(doc, "h1")).To(HaveLen(1))
			Expect(elements(doc, "svg")).To(HaveLen(2))
			Expect(text(doc)).To(SatisfyAll(
				ContainSubstring("No managers, faults or tasks were recorded."),
				ContainSubstring("No client writes were recorded."),
				ContainSubstring("No events were recorded."),
				ContainSubstring("no result recorded"),
			))
		})
	})

	When("a 60 s run has 10 workers, 5,000 writes and 2,000 events", func() {
		BeforeEach(func() {
			tl = bigRun(5000)
		})

		It("stays under 2 MB and shows the first and last 250 events", func() {
			path := filepath.Join(GinkgoT().TempDir(), "report.html")
			Expect(os.WriteFile(path, page, 0o644)).To(Succeed())
			info, err := os.Stat(path)
			Expect(err).NotTo(HaveOccurred())
			Expect(info.Size()).To(BeNumerically("<", pageLimitBytes))

			rows := elements(doc, "tr")
			Expect(rows).To(HaveLen(1+500+1), "header, 500 events, the gap")
			Expect(text(withClass(doc, "gap")[0])).To(Equal("1500 more events from 7.500s to 52.470s not shown"))
			Expect(texts(doc, "td")).To(ContainElements(tl.Events[0].Text, tl.Events[249].Text, tl.Events[1750].Text, tl.Events[1999].Text))
			Expect(texts(doc, "td")).NotTo(ContainElement(tl.Events[250].Text))
		})
	})

	When("there are far more writes than pixels", func() {
		BeforeEach(func() {
			tl = bigRun(200_000)
		})

		It("keeps a few ranks of each pixel column and stays under 2 MB", func() {
			Expect(len(page)).To(BeNumerically("<", pageLimitBytes))
			Expect(texts(doc, "figcaption")).To(ContainElement(ContainSubstring("median, p90, p99 and slowest write")))
			marks := strings.Count(attr(withClass(doc, "acked")[0], "d"), "M")
			Expect(marks).To(BeNumerically("<=", 5*1100/2), "five marks per 2-pixel column at most")
		})
	})
})

var _ = Describe("Timeline", Label("sim"), func() {
	// writes returns acknowledged writes of the given latencies in ms, in a
	// scrambled order, and slower lost writes that must not count.
	writes := func(ms ...int) []sim.WriteSample {
		var out []sim.WriteSample
		for i, m := range ms {
			out = append(out, sim.WriteSample{At: time.Duration(i) * time.Second, Latency: time.Duration(m) * time.Millisecond, Acked: true})
			out = append(out, sim.WriteSample{At: time.Duration(i) * time.Second, Latency: time.Hour})
		}
		return out
	}
	one := []int{7, 3, 10, 1, 9, 2, 8, 4, 6, 5}
	var hundred []int
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, i)
	}

	DescribeTable("WriteLatencyPercentile is the nearest rank over acknowledged writes",
		func(ms []int, p float64, wantMs int) {
			tl := &sim.Timeline{Writes: writes(ms...)}
			Expect(tl.WriteLatencyPercentile(p)).To(Equal(time.Duration(wantMs) * time.Millisecond))
		},
		Entry("p50 of 1..10 is the 5th", one, 50.0, 5),
		Entry("p51 of 1..10 rounds up to the 6th", one, 51.0, 6),
		Entry("p90 of 1..10 is the 9th", one, 90.0, 9),
		Entry("p99 of 1..10 is the largest", one, 99.0, 10),
		Entry("p100 is the largest", one, 100.0, 10),
		Entry("p1 of 1..10 is the smallest", one, 1.0, 1),
		Entry("p0 is the smallest", one, 0.0, 1),
		Entry("p99 of 1..100 is the 99th, not the 100th", hundred, 99.0, 99),
		Entry("p99.9 of 1..100 is the largest", hundred, 99.9, 100),
		Entry("with no acknowledged write it is 0", []int{}, 50.0, 0),
	)
})
