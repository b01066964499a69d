package bolt_test

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-orchestrator/warren/backends/bolt"
)

// BenchmarkRaftStoreLogs measures what a raft leader waits for on every
// append with no batching: one 256-byte log per fsynced transaction.
func BenchmarkRaftStoreLogs(b *testing.B) {
	s, err := bolt.OpenRaftStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	data := make([]byte, 256)
	for i := range data {
		data[i] = byte(i)
	}
	durations := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		log := &raft.Log{Index: uint64(i) + 1, Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}
		start := time.Now()
		if err := s.StoreLogs([]*raft.Log{log}); err != nil {
			b.Fatal(err)
		}
		durations[i] = time.Since(start)
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(percentileMicros(durations, 50), "p50-us")
	b.ReportMetric(percentileMicros(durations, 99), "p99-us")
}

// percentileMicros is the p-th percentile of sorted, in microseconds.
func percentileMicros(sorted []time.Duration, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)*p/100, len(sorted)-1)
	return float64(sorted[i]) / float64(time.Microsecond)
}
