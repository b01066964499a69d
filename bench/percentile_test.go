package bench

import (
	"math"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest sample with at least p% of the samples
// at or below it. No interpolation, so the result is always a latency that
// was actually observed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// p*n first: exact for whole p, so p*n/100 is exact when it is whole.
	rank := int(math.Ceil(p * float64(len(sorted)) / 100))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// latency summarises per-operation samples; it sorts samples in place.
type latency struct{ p50, p99 time.Duration }

func summarise(samples []time.Duration) latency {
	slices.Sort(samples)
	return latency{p50: percentile(samples, 50), p99: percentile(samples, 99)}
}

// micros converts a duration to the microseconds the "-us" metrics use.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

var _ = DescribeTable("percentile by nearest rank",
	func(samples []time.Duration, p float64, want time.Duration) {
		Expect(percentile(samples, p)).To(Equal(want))
	},
	Entry("one sample is every percentile", []time.Duration{7}, 99.0, time.Duration(7)),
	Entry("p50 of an even count is the lower middle", []time.Duration{1, 2, 3, 4}, 50.0, time.Duration(2)),
	Entry("p50 of an odd count is the middle", []time.Duration{1, 2, 3, 4, 5}, 50.0, time.Duration(3)),
	Entry("p99 of 100 is the 99th", durations(100), 99.0, time.Duration(99)),
	Entry("p99 of 1000 is the 990th", durations(1000), 99.0, time.Duration(990)),
	Entry("p99 of 10 is the largest", durations(10), 99.0, time.Duration(10)),
	Entry("p100 is the largest", durations(10), 100.0, time.Duration(10)),
	Entry("no samples give zero", []time.Duration{}, 50.0, time.Duration(0)),
)

// durations returns 1..n, sorted.
func durations(n int) []time.Duration {
	d := make([]time.Duration, n)
	for i := range d {
		d[i] = time.Duration(i + 1)
	}
	return d
}
