package sim

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Geometry of the report's charts, in SVG pixels. Both charts share the
// left gutter and plot width, so their time axes line up on the page.
const (
	reportWidth      = 1100
	reportLeft       = 170 // lane names, latency ticks
	reportRight      = 100 // per-lane notes, p50/p99 labels
	reportPlotW      = reportWidth - reportLeft - reportRight
	reportLaneH      = 20
	reportLaneGap    = 4
	reportLabelRunes = 24 // longer lane names are cut, in full in a tooltip

	// Writes on the same reportCell x reportCell square share one mark,
	// which changes nothing visible; past reportMaxMarks squares each column
	// keeps only the writes at reportThinRanks, which bounds the page size
	// whatever the number of writes.
	reportCell     = 2
	reportMaxMarks = 6000
	reportPlotH    = 200

	// reportMaxEvents rows of the event table at most: the first half and the
	// last half, since a failing check is usually among the last events.
	reportMaxEvents = 500
)

var (
	// reportThinRanks are the percentiles of each pixel column's writes
	// that a thinned latency chart keeps.
	reportThinRanks = []float64{0, 50, 90, 99, 100}

	reportTermColors  = []string{"#1f77b4", "#2ca02c", "#17becf", "#6b6ecf", "#3182bd", "#31a354"}
	reportFaultColors = []string{"#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}
)

// WriteReport writes tl as one self-contained HTML page: a header with the
// result and the replay command, swim lanes of leaders, faults and running
// tasks, write latencies, and the events. The same Timeline gives the same
// bytes.
func WriteReport(w io.Writer, tl *Timeline) error {
	var buf bytes.Buffer
	if err := reportTemplate.Execute(&buf, newReportView(tl)); err != nil {
		return fmt.Errorf("sim: rendering the report of scenario %q: %w", tl.Scenario, err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("sim: writing the report of scenario %q: %w", tl.Scenario, err)
	}
	return nil
}

// reportView is everything the template shows, laid out and formatted:
// the template only places it.
type reportView struct {
	Scenario, Result, TraceHash, Duration, Replay string
	Seed                                          uint64
	Passed                                        bool
	Width, Left, PlotW, PlotRight, LabelX, NoteX  int
	Lanes                                         reportLanes
	Writes                                        reportWrites
	Events                                        reportEvents
}

type reportTick struct {
	X     float64
	Label string
}

type reportText struct {
	X, Y float64
	Text string
}

type reportLane struct {
	Y, H, TextY        float64
	Label, Title, Note string
}

type reportBar struct {
	X, Y, W, H, TextX, TextY float64
	Fill, Label, Title       string
}

type reportInstant struct {
	X           float64
	D           string // the marker in its lane
	Fill, Title string
}

// reportLanes is the swim-lane chart.
type reportLanes struct {
	Height, AxisTop, AxisBottom, GridTop, GridBottom float64
	Ticks                                            []reportTick
	Headings                                         []reportText
	Lanes                                            []reportLane
	Bands, Bars                                      []reportBar
	Areas                                            []string // path data
	Instants                                         []reportInstant
	Empty                                            bool
	TasksFull                                        int // running tasks that fill a worker lane
}

// reportHLine is a horizontal line of the latency chart (a decade, p50,
// p99) and its label.
type reportHLine struct {
	Y, TextY float64
	Label    string
}

// reportWrites is the write-latency chart.
type reportWrites struct {
	Height, PlotTop, PlotBottom, LostY, AxisBottom float64
	Ticks                                          []reportTick
	YTicks                                         []reportHLine
	Acked, Lost                                    string // path data
	Percentiles                                    []reportHLine
	Bands                                          []reportBar
	Instants                                       []reportInstant // only their lines
	Caption                                        string
}

type reportEventRow struct{ At, Node, Text string }

type reportEvents struct {
	Head, Tail []reportEventRow
	Gap        string // stands for the rows left out between Head and Tail
	Total      int
}

// reportScale maps simulated time to x.
type reportScale struct{ end time.Duration }

func (s reportScale) x(t time.Duration) float64 {
	t = min(max(t, 0), s.end)
	return reportLeft + float64(t)/float64(s.end)*reportPlotW
}

// ticks returns about ten ticks at a 1, 2 or 5 step, labelled in one unit.
func (s reportScale) ticks() []reportTick {
	step := time.Duration(1)
search:
	for base := time.Duration(1); ; base *= 10 {
		for _, m := range []time.Duration{1, 2, 5} {
			if step = base * m; s.end/step <= 10 {
				break search
			}
		}
	}
	unit, suffix := time.Microsecond, "µs"
	switch {
	case s.end >= time.Second:
		unit, suffix = time.Second, "s"
	case s.end >= time.Millisecond:
		unit, suffix = time.Millisecond, "ms"
	}
	var out []reportTick
	for t := time.Duration(0); t <= s.end; t += step {
		label := strconv.FormatFloat(float64(t)/float64(unit), 'f', -1, 64) + suffix
		out = append(out, reportTick{X: s.x(t), Label: label})
	}
	return out
}

// reportEnd is the span the time axis covers: End, or when End was not set
// the last instant recorded.
func reportEnd(tl *Timeline) time.Duration {
	end := tl.End
	if end > 0 {
		return end
	}
	for _, s := range tl.Leaders {
		end = max(end, s.From, s.To)
	}
	for _, f := range tl.Faults {
		end = max(end, f.From, f.To)
	}
	for _, s := range tl.Tasks {
		end = max(end, s.At)
	}
	for _, w := range tl.Writes {
		end = max(end, w.At)
	}
	for _, e := range tl.Events {
		end = max(end, e.At)
	}
	if end <= 0 {
		return time.Second
	}
	return end
}

func newReportView(tl *Timeline) reportView {
	scale := reportScale{end: reportEnd(tl)}
	v := reportView{
		Scenario:  tl.Scenario,
		Seed:      tl.Seed,
		Result:    tl.Result,
		Passed:    tl.passed(),
		TraceHash: tl.TraceHash,
		Duration:  tl.End.String(),
		Replay:    tl.ReplayCommand(),
		Width:     reportWidth,
		Left:      reportLeft,
		PlotW:     reportPlotW,
		PlotRight: reportLeft + reportPlotW,
		LabelX:    reportLeft - 6,
		NoteX:     reportLeft + reportPlotW + 6,
		Lanes:     newReportLanes(tl, scale),
		Writes:    newReportWrites(tl, scale),
		Events:    newReportEvents(tl.Events),
	}
	// Faults shade the latency chart too: most slow or lost writes are
	// explained by one.
	for _, b := range v.Lanes.Bands {
		b.Y, b.H = v.Writes.PlotTop, v.Writes.PlotBottom-v.Writes.PlotTop
		v.Writes.Bands = append(v.Writes.Bands, b)
	}
	v.Writes.Instants = v.Lanes.Instants
	return v
}

func newReportLanes(tl *Timeline, scale reportScale) reportLanes {
	l := reportLanes{AxisTop: 12, GridTop: 20}
	y := l.GridTop
	heading := func(text string) {
		l.Headings = append(l.Headings, reportText{X: 4, Y: y + 13, Text: text})
		y += 18
	}
	lane := func(name, note string) reportLane {
		ln := reportLane{Y: y, H: reportLaneH, TextY: y + reportLaneH/2 + 4, Label: reportCut(name), Title: name, Note: note}
		l.Lanes = append(l.Lanes, ln)
		y += reportLaneH + reportLaneGap
		return ln
	}

	// Managers: who led, per term. A leader missing from Managers gets a
	// lane of its own rather than being dropped.
	managers := reportOrder(tl.Managers, func(yield func(string) bool) {
		for _, s := range tl.Leaders {
			if !yield(s.Manager) {
				return
			}
		}
	})
	if len(managers) > 0 {
		heading("managers (leader, by term)")
	}
	managerLane := map[string]reportLane{}
	for _, m := range managers {
		managerLane[m] = lane(m, "")
	}
	for _, s := range tl.Leaders {
		ln := managerLane[s.Manager]
		to := s.until(scale.end)
		x0, x1 := scale.x(s.From), scale.x(to)
		w := max(x1-x0, 1)
		term := strconv.FormatUint(s.Term, 10)
		label := ""
		switch {
		case w >= float64(7*(len(term)+6)):
			label = "term " + term
		case w >= float64(7*(len(term)+1)):
			label = term
		}
		l.Bars = append(l.Bars, reportBar{
			X: x0, Y: ln.Y + 2, W: w, H: ln.H - 4, TextX: x0 + w/2, TextY: ln.TextY,
			Fill:  reportTermColors[s.Term%uint64(len(reportTermColors))],
			Label: label,
			Title: fmt.Sprintf("%s led term %d from %s to %s", s.Manager, s.Term, reportSeconds(s.From), reportSeconds(to)),
		})
	}

	// Faults: a lane per kind and target, and a band across every lane
	// while the fault lasts, so its effect on leaders and tasks lines up.
	if len(tl.Faults) > 0 {
		heading("faults")
	}
	faultLane := map[string]reportLane{}
	kindColor := map[string]string{}
	for _, f := range tl.Faults {
		name := strings.TrimSpace(f.Kind + " " + f.Target)
		ln, ok := faultLane[name]
		if !ok {
			ln = lane(name, "")
			faultLane[name] = ln
		}
		color, ok := kindColor[f.Kind]
		if !ok {
			color = reportFaultColors[len(kindColor)%len(reportFaultColors)]
			kindColor[f.Kind] = color
		}
		x0 := scale.x(f.From)
		if f.To == 0 {
			l.Instants = append(l.Instants, reportInstant{
				X:     x0,
				D:     fmt.Sprintf("M%s %sl6 6-6 6-6-6z", reportPx(x0), reportPx(ln.Y+ln.H/2-6)),
				Fill:  color,
				Title: fmt.Sprintf("%s at %s", name, reportSeconds(f.From)),
			})
			continue
		}
		w := max(scale.x(f.To)-x0, 1)
		title := fmt.Sprintf("%s from %s to %s", name, reportSeconds(f.From), reportSeconds(f.To))
		l.Bars = append(l.Bars, reportBar{X: x0, Y: ln.Y + 4, W: w, H: ln.H - 8, Fill: color, Title: title})
		l.Bands = append(l.Bands, reportBar{X: x0, W: w, Fill: color, Title: title})
	}

	// Workers, then any other node that ran tasks (a manager may), on one
	// scale: the busiest node at its busiest fills its lane.
	samples := slices.Clone(tl.Tasks)
	slices.SortStableFunc(samples, func(a, b TaskSample) int { return cmp.Compare(a.At, b.At) })
	var extra []string
	full := 1
	for _, s := range samples {
		for node, n := range s.Running {
			full = max(full, n)
			if !slices.Contains(tl.Workers, node) && !slices.Contains(extra, node) {
				extra = append(extra, node)
			}
		}
	}
	slices.Sort(extra) // found by ranging over maps
	l.TasksFull = full
	nodes := append(slices.Clone(tl.Workers), extra...)
	if len(nodes) > 0 {
		heading(fmt.Sprintf("running tasks (full lane = %d)", full))
	}
	for _, node := range nodes {
		d, peak := reportStepPath(samples, node, scale, y+reportLaneH, float64(reportLaneH)/float64(full))
		lane(node, fmt.Sprintf("max %d", peak))
		if d != "" {
			l.Areas = append(l.Areas, d)
		}
	}

	l.Empty = len(l.Lanes) == 0
	if l.Empty {
		y += 40 // room for a "nothing recorded" line
	}
	l.GridBottom = y
	for i := range l.Bands {
		l.Bands[i].Y, l.Bands[i].H = l.GridTop, l.GridBottom-l.GridTop
	}
	l.AxisBottom = y + 14
	l.Height = y + 22
	l.Ticks = scale.ticks()
	return l
}

// reportStepPath draws node's running tasks as a filled step chart whose
// base is at y=bottom, and returns the path and the node's peak. Only
// changes make points, and a pixel column with several changes shows its
// highest count, then its last: a lane costs at most two points a pixel
// however often the node was sampled, and no spike disappears.
func reportStepPath(samples []TaskSample, node string, scale reportScale, bottom, pxPerTask float64) (string, int) {
	var b strings.Builder
	peak, drawn := 0, -1
	step := func(x float64, n int) {
		if n == drawn {
			return
		}
		if drawn < 0 {
			fmt.Fprintf(&b, "M%s %s", reportPx(x), reportPx(bottom))
		} else {
			fmt.Fprintf(&b, "H%s", reportPx(x))
		}
		fmt.Fprintf(&b, "V%s", reportPx(bottom-float64(n)*pxPerTask))
		drawn = n
	}
	col, colX, colMax, colLast := -1, 0.0, 0, 0
	flush := func() {
		if col < 0 {
			return
		}
		step(colX, colMax)
		if colLast != colMax {
			step(float64(col+1), colLast)
		}
	}
	for _, s := range samples {
		n, ok := s.Running[node]
		if !ok {
			continue
		}
		peak = max(peak, n)
		x := scale.x(s.At)
		if c := int(x); c != col {
			flush()
			col, colX, colMax = c, x, n
		}
		colMax, colLast = max(colMax, n), n
	}
	flush()
	if drawn < 0 {
		return "", 0
	}
	fmt.Fprintf(&b, "H%sV%sZ", reportPx(scale.x(scale.end)), reportPx(bottom))
	return b.String(), peak
}

func newReportWrites(tl *Timeline, scale reportScale) reportWrites {
	c := reportWrites{LostY: 14, PlotTop: 32}
	c.PlotBottom = c.PlotTop + reportPlotH
	c.AxisBottom = c.PlotBottom + 16
	c.Height = c.AxisBottom + 8
	c.Ticks = scale.ticks()

	// Latencies span decades (a commit, then an election), so y is
	// logarithmic, from the decade below the fastest write to the decade
	// above the slowest.
	acked := tl.ackedLatencies()
	lo, hi := time.Millisecond, time.Second
	if len(acked) > 0 {
		fastest, slowest := max(acked[0], time.Microsecond), max(acked[len(acked)-1], time.Microsecond)
		for lo = 1; lo*10 <= fastest; lo *= 10 {
		}
		for hi = lo * 10; hi < slowest; hi *= 10 {
		}
	}
	decades := math.Log10(float64(hi) / float64(lo))
	y := func(d time.Duration) float64 {
		d = min(max(d, lo), hi)
		return c.PlotBottom - math.Log10(float64(d)/float64(lo))/decades*reportPlotH
	}
	for d := lo; d <= hi; d *= 10 {
		c.YTicks = append(c.YTicks, reportHLine{Y: y(d), TextY: y(d) + 4, Label: reportDecade(d)})
	}

	type cell struct{ x, y int }
	var cells []cell
	seen := map[cell]bool{}
	columns := map[int][]int{} // every acked write's y cell, by x cell
	var lostXs []int
	seenLost := map[int]bool{}
	for _, w := range tl.Writes {
		cx := int(scale.x(w.At) / reportCell)
		if !w.Acked {
			if !seenLost[cx] {
				seenLost[cx] = true
				lostXs = append(lostXs, cx)
			}
			continue
		}
		k := cell{cx, int(y(w.Latency) / reportCell)}
		columns[cx] = append(columns[cx], k.y)
		if !seen[k] {
			seen[k] = true
			cells = append(cells, k)
		}
	}
	thinned := len(cells) > reportMaxMarks
	if thinned {
		// Keep, per column, the writes at a few ranks: the spread, the
		// outliers and the median survive, the density around them does not.
		cells = cells[:0]
		for _, x := range slices.Sorted(maps.Keys(columns)) {
			ys := columns[x]
			slices.Sort(ys)
			slices.Reverse(ys) // fastest first: y grows downwards
			var kept []int
			for _, p := range reportThinRanks {
				rank := int(math.Ceil(p * float64(len(ys)) / 100))
				if y := ys[max(rank, 1)-1]; !slices.Contains(kept, y) {
					kept = append(kept, y)
					cells = append(cells, cell{x, y})
				}
			}
		}
	}
	var b strings.Builder
	for _, k := range cells {
		fmt.Fprintf(&b, "M%d %dh0", k.x*reportCell+reportCell/2, k.y*reportCell+reportCell/2)
	}
	c.Acked = b.String()
	b.Reset()
	for _, cx := range lostXs {
		fmt.Fprintf(&b, "M%d %sl6 6m0-6l-6 6", cx*reportCell+reportCell/2-3, reportPx(c.LostY-3))
	}
	c.Lost = b.String()

	p50, p99 := nearestRankPercentile(acked, 50), nearestRankPercentile(acked, 99)
	if len(acked) > 0 {
		// p50's label goes under its line and p99's over its line, so they
		// stay apart when the two are close.
		c.Percentiles = []reportHLine{
			{Y: y(p50), TextY: y(p50) + 12, Label: "p50 " + reportLatency(p50)},
			{Y: y(p99), TextY: y(p99) - 4, Label: "p99 " + reportLatency(p99)},
		}
	}

	lost := len(tl.Writes) - len(acked)
	switch {
	case len(tl.Writes) == 0:
		c.Caption = "No client writes were recorded."
	case len(acked) == 0:
		c.Caption = fmt.Sprintf("%d client writes, all lost (crosses along the top).", lost)
	default:
		c.Caption = fmt.Sprintf("%d client writes: %d acknowledged (dots, log scale), %d lost (crosses along the top). "+
			"p50 %s, p99 %s, nearest rank over acknowledged writes. ",
			len(tl.Writes), len(acked), lost,
			reportLatency(p50), reportLatency(p99))
		if thinned {
			c.Caption += fmt.Sprintf("Thinned to %d marks: each %d-pixel column shows only its fastest, median, p90, p99 and slowest write.",
				len(cells), reportCell)
		} else {
			c.Caption += fmt.Sprintf("Drawn as %d marks: writes that fall on the same %d-pixel square share one.",
				len(cells), reportCell)
		}
	}
	return c
}

func newReportEvents(events []Event) reportEvents {
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, func(a, b Event) int { return cmp.Compare(a.At, b.At) })
	rows := func(es []Event) []reportEventRow {
		out := make([]reportEventRow, len(es))
		for i, e := range es {
			out[i] = reportEventRow{At: reportSeconds(e.At), Node: e.Node, Text: e.Text}
		}
		return out
	}
	r := reportEvents{Total: len(sorted)}
	if len(sorted) <= reportMaxEvents {
		r.Head = rows(sorted)
		return r
	}
	half := reportMaxEvents / 2
	head, tail := sorted[:half], sorted[len(sorted)-half:]
	left := sorted[half : len(sorted)-half]
	r.Head, r.Tail = rows(head), rows(tail)
	r.Gap = fmt.Sprintf("%d more events from %s to %s not shown", len(left), reportSeconds(left[0].At), reportSeconds(left[len(left)-1].At))
	return r
}

// reportOrder returns ids, then the others that more yields, in the order
// first seen, without repeats.
func reportOrder(ids []string, more func(yield func(string) bool)) []string {
	out := slices.Clone(ids)
	for id := range more {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// reportCut shortens a lane name to fit the gutter.
func reportCut(s string) string {
	if utf8.RuneCountInString(s) <= reportLabelRunes {
		return s
	}
	return string([]rune(s)[:reportLabelRunes-1]) + "…"
}

// reportPx formats an SVG coordinate to a tenth of a pixel.
func reportPx(f float64) string {
	s := strings.TrimSuffix(strconv.FormatFloat(f, 'f', 1, 64), ".0")
	if s == "-0" {
		return "0"
	}
	return s
}

// reportSeconds formats an instant of the run, to the millisecond.
func reportSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + "s"
}

// reportLatency formats a latency to the millisecond from a second up,
// else to the microsecond.
func reportLatency(d time.Duration) string {
	if d >= time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// reportDecade labels a power of ten nanoseconds: 100µs, 1ms, 10s.
func reportDecade(d time.Duration) string {
	unit, suffix := time.Nanosecond, "ns"
	switch {
	case d >= time.Second:
		unit, suffix = time.Second, "s"
	case d >= time.Millisecond:
		unit, suffix = time.Millisecond, "ms"
	case d >= time.Microsecond:
		unit, suffix = time.Microsecond, "µs"
	}
	return strconv.FormatInt(int64(d/unit), 10) + suffix
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{"px": reportPx}).Parse(reportHTML))

// reportHTML is the page. html/template escapes every value by context,
// so names and messages cannot break out of the markup.
const reportHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .Scenario}}{{.Scenario}}{{else}}(unnamed scenario){{end}}, seed {{.Seed}}: warren sim</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 1.5em auto; max-width: 1140px; padding: 0 1em; }
h1 { font-size: 1.5em; margin: 0 0 .4em; overflow-wrap: anywhere; }
h2 { font-size: 1.15em; margin: 1.6em 0 .4em; }
code, pre, td.at { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; margin: 0; }
dt { color: #666; }
dd { margin: 0; overflow-wrap: anywhere; }
.result { font-weight: 600; white-space: pre-wrap; }
.pass { color: #1a7f37; }
.fail { color: #cf222e; }
.none { color: #666; }
.replay { background: #f3f3f3; padding: .1em .4em; border-radius: 3px; user-select: all; }
figure { margin: 0; }
figcaption { color: #555; font-size: .92em; margin-top: .3em; }
svg { max-width: 100%; height: auto; display: block; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg .name { text-anchor: end; }
svg .tick text { text-anchor: middle; fill: #666; }
svg .heading { font-weight: 600; fill: #555; }
svg .bar { fill: #fff; text-anchor: middle; font-weight: 600; }
svg .lane { fill: #f4f5f7; }
svg .grid line { stroke: #e3e3e3; }
svg .band { fill-opacity: .12; }
svg .instant { stroke-dasharray: 3 3; stroke-width: 1; }
svg .tasks { fill: #9ec1e6; stroke: #3d6fa3; stroke-width: .8; }
svg .acked { stroke: #1f77b4; stroke-opacity: .55; stroke-width: 3; stroke-linecap: round; fill: none; }
svg .lost { stroke: #d62728; stroke-width: 1.4; fill: none; }
svg .pct { stroke: #444; stroke-dasharray: 5 3; }
table { border-collapse: collapse; width: 100%; font-size: .92em; }
th, td { text-align: left; padding: .15em .6em; border-bottom: 1px solid #eee; vertical-align: top; }
td.at { text-align: right; white-space: nowrap; color: #555; }
td.text { overflow-wrap: anywhere; }
tr.gap td { text-align: center; color: #666; font-style: italic; background: #fafafa; }
</style>
</head>
<body>
<header>
<h1>{{if .Scenario}}{{.Scenario}}{{else}}(unnamed scenario){{end}}</h1>
<dl>
<dt>Result</dt><dd class="result {{if .Passed}}pass{{else if .Result}}fail{{else}}none{{end}}">{{if .Result}}{{.Result}}{{else}}no result recorded{{end}}</dd>
<dt>Seed</dt><dd>{{.Seed}}</dd>
<dt>Replay</dt><dd><code class="replay">{{.Replay}}</code></dd>
<dt>Trace hash</dt><dd><code>{{if .TraceHash}}{{.TraceHash}}{{else}}none{{end}}</code></dd>
<dt>Simulated</dt><dd>{{.Duration}}</dd>
</dl>
</header>

<h2>Timeline</h2>
<figure>
{{- with .Lanes}}
<svg role="img" aria-label="Timeline of leaders, faults and running tasks" width="{{$.Width}}" height="{{px .Height}}" viewBox="0 0 {{$.Width}} {{px .Height}}">
<g class="grid">{{range .Ticks}}<line x1="{{px .X}}" x2="{{px .X}}" y1="{{px $.Lanes.GridTop}}" y2="{{px $.Lanes.GridBottom}}"/>{{end}}</g>
<g class="tick">{{range .Ticks}}<text x="{{px .X}}" y="{{px $.Lanes.AxisTop}}">{{.Label}}</text><text x="{{px .X}}" y="{{px $.Lanes.AxisBottom}}">{{.Label}}</text>{{end}}</g>
{{range .Headings}}<text class="heading" x="{{px .X}}" y="{{px .Y}}">{{.Text}}</text>
{{end}}
{{- range .Lanes}}<rect class="lane" x="{{$.Left}}" y="{{px .Y}}" width="{{$.PlotW}}" height="{{px .H}}"/><text class="name" x="{{$.LabelX}}" y="{{px .TextY}}">{{.Label}}<title>{{.Title}}</title></text>{{if .Note}}<text x="{{$.NoteX}}" y="{{px .TextY}}">{{.Note}}</text>{{end}}
{{end}}
{{- range .Areas}}<path class="tasks" d="{{.}}"/>
{{end}}
{{- range .Bars}}<rect x="{{px .X}}" y="{{px .Y}}" width="{{px .W}}" height="{{px .H}}" fill="{{.Fill}}"><title>{{.Title}}</title></rect>{{if .Label}}<text class="bar" x="{{px .TextX}}" y="{{px .TextY}}">{{.Label}}</text>{{end}}
{{end}}
{{- range .Bands}}<rect class="band" x="{{px .X}}" y="{{px .Y}}" width="{{px .W}}" height="{{px .H}}" fill="{{.Fill}}"><title>{{.Title}}</title></rect>
{{end}}
{{- range .Instants}}<line class="instant" x1="{{px .X}}" x2="{{px .X}}" y1="{{px $.Lanes.GridTop}}" y2="{{px $.Lanes.GridBottom}}" stroke="{{.Fill}}"/><path d="{{.D}}" fill="{{.Fill}}"><title>{{.Title}}</title></path>
{{end}}
{{- if .Empty}}<text x="{{$.Left}}" y="{{px $.Lanes.GridTop}}" dy="24">No managers, faults or tasks were recorded.</text>
{{end -}}
</svg>
<figcaption>Managers: a bar while a manager led, labelled with its term. Faults: a lane each, and a translucent band across both charts while active; a diamond and a dashed line for an instantaneous one. Nodes: running tasks, all on one scale (a full lane is {{.TasksFull}}). Hover for details.</figcaption>
{{- end}}
</figure>

<h2>Write latency</h2>
<figure>
{{- with .Writes}}
<svg role="img" aria-label="Write latency over time" width="{{$.Width}}" height="{{px .Height}}" viewBox="0 0 {{$.Width}} {{px .Height}}">
<g class="grid">{{range .Ticks}}<line x1="{{px .X}}" x2="{{px .X}}" y1="{{px $.Writes.PlotTop}}" y2="{{px $.Writes.PlotBottom}}"/>{{end}}{{range .YTicks}}<line x1="{{$.Left}}" x2="{{$.PlotRight}}" y1="{{px .Y}}" y2="{{px .Y}}"/>{{end}}</g>
<g class="tick">{{range .Ticks}}<text x="{{px .X}}" y="{{px $.Writes.AxisBottom}}">{{.Label}}</text>{{end}}</g>
{{range .Bands}}<rect class="band" x="{{px .X}}" y="{{px .Y}}" width="{{px .W}}" height="{{px .H}}" fill="{{.Fill}}"><title>{{.Title}}</title></rect>
{{end}}
{{- range .Instants}}<line class="instant" x1="{{px .X}}" x2="{{px .X}}" y1="{{px $.Writes.PlotTop}}" y2="{{px $.Writes.PlotBottom}}" stroke="{{.Fill}}"><title>{{.Title}}</title></line>
{{end}}
{{- range .YTicks}}<text class="name" x="{{$.LabelX}}" y="{{px .TextY}}">{{.Label}}</text>{{end}}
<text class="name" x="{{$.LabelX}}" y="{{px .LostY}}" dy="4">lost</text>
{{if .Acked}}<path class="acked" d="{{.Acked}}"/>
{{end}}
{{- if .Lost}}<path class="lost" d="{{.Lost}}"/>
{{end}}
{{- range .Percentiles}}<line class="pct" x1="{{$.Left}}" x2="{{$.PlotRight}}" y1="{{px .Y}}" y2="{{px .Y}}"/><text x="{{$.NoteX}}" y="{{px .TextY}}">{{.Label}}</text>
{{end -}}
</svg>
<figcaption>{{.Caption}}</figcaption>
{{- end}}
</figure>

<h2>Events</h2>
{{- with .Events}}
{{- if .Total}}
<table>
<thead><tr><th>time</th><th>node</th><th>event</th></tr></thead>
<tbody>
{{range .Head}}<tr><td class="at">{{.At}}</td><td>{{.Node}}</td><td class="text">{{.Text}}</td></tr>
{{end}}
{{- if .Gap}}<tr class="gap"><td colspan="3">{{.Gap}}</td></tr>
{{end}}
{{- range .Tail}}<tr><td class="at">{{.At}}</td><td>{{.Node}}</td><td class="text">{{.Text}}</td></tr>
{{end -}}
</tbody>
</table>
{{- else}}
<p>No events were recorded.</p>
{{- end}}
{{- end}}
</body>
</html>
`
