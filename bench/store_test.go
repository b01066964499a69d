package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/bolt"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

const (
	// recordBytes is the JSON size of the services the write benchmarks
	// write: a large but realistic service spec.
	recordBytes = 2048
	// writeIDs is how many services the write benchmarks cycle over. They
	// all exist before the timer starts, so every timed write replaces a
	// record of the same size: the file stops growing and the B-tree keeps
	// its depth, so the numbers do not drift with b.N. An update of an
	// existing service is also the common write in a running cluster.
	writeIDs = 1000
	// floorBytes is what one fsync-floor sample appends.
	floorBytes = 1024
	// writers is the concurrency of BenchmarkStoreWriteParallel.
	writers = 16
	// lookupServices is the state size of BenchmarkGetServiceByName.
	lookupServices = 10_000
	// lookupStride is prime to lookupServices, so i*lookupStride visits
	// every name in a scattered, reproducible order.
	lookupStride = 7919
)

func serviceID(i int) string   { return fmt.Sprintf("svc-%05d", i) }
func serviceName(i int) string { return fmt.Sprintf("web-%05d", i) }

// writeFixture returns the writeIDs services the write benchmarks upsert,
// built up front so that the timed loop only writes.
func writeFixture() []*types.Service {
	svcs := make([]*types.Service, writeIDs)
	for i := range svcs {
		svcs[i] = typestest.LargeService(serviceID(i), serviceName(i), recordBytes)
	}
	return svcs
}

// lookupFixture returns lookupServices ordinary (~580-byte) services. The
// scan's cost grows with record size and the index's hardly does, so the
// small record gives the conservative speedup.
func lookupFixture() []*types.Service {
	svcs := make([]*types.Service, lookupServices)
	for i := range svcs {
		svcs[i] = typestest.Service(serviceID(i), serviceName(i))
	}
	return svcs
}

// openBolt opens a bolt Store in dir holding svcs, written in one
// transaction, and closes it when the benchmark ends.
func openBolt(b *testing.B, dir string, svcs []*types.Service) state.Store {
	b.Helper()
	if err := checkOnDisk(dir); err != nil {
		b.Fatal(err)
	}
	s, err := bolt.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	})
	seed(b, s, svcs)
	return s
}

func seed(b *testing.B, s state.Store, svcs []*types.Service) {
	b.Helper()
	err := s.Update(func(tx state.Tx) error {
		for _, svc := range svcs {
			if err := tx.UpdateService(svc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// fsyncFloor appends blocks to a file and fsyncs it: the cheapest durable
// write on the disk under the store, to compare the store's commit with.
type fsyncFloor struct {
	f     *os.File
	block []byte
}

func openFloor(b *testing.B, dir string) *fsyncFloor {
	b.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "fsync-floor"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	return &fsyncFloor{f: f, block: make([]byte, floorBytes)}
}

// sample times one append and fsync.
func (fl *fsyncFloor) sample(b *testing.B) time.Duration {
	start := time.Now()
	if _, err := fl.f.Write(fl.block); err != nil {
		b.Fatal(err)
	}
	if err := fl.f.Sync(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func reportLatency(b *testing.B, samples []time.Duration) latency {
	l := summarise(samples)
	b.ReportMetric(micros(l.p50), "p50-us")
	b.ReportMetric(micros(l.p99), "p99-us")
	return l
}

// BenchmarkStoreWrite times single fsynced upserts of a ~2 KB service on
// the bolt store, one transaction each, against the disk's fsync floor
// sampled in the same directory between the writes.
func BenchmarkStoreWrite(b *testing.B) {
	dir := b.TempDir()
	svcs := writeFixture()
	s := openBolt(b, dir, svcs)
	floor := openFloor(b, dir)
	writes := make([]time.Duration, b.N)
	floors := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := s.UpdateService(svcs[i%len(svcs)]); err != nil {
			b.Fatal(err)
		}
		writes[i] = time.Since(start)
		// One floor sample per write, interleaved because the disk's
		// latency drifts over a run; with the timer stopped so that ns/op
		// and allocs/op are the store's alone.
		b.StopTimer()
		floors[i] = floor.sample(b)
		b.StartTimer()
	}
	b.StopTimer()
	w := reportLatency(b, writes)
	f := summarise(floors)
	b.ReportMetric(micros(f.p50), "floor-p50-us")
	b.ReportMetric(micros(f.p99), "floor-p99-us") // is a slow write the store's or the disk's?
	b.ReportMetric(float64(w.p50)/float64(f.p50), "ratio-p50")
}

// BenchmarkStoreWriteParallel runs the upserts of BenchmarkStoreWrite from
// 16 goroutines at once, each op on a service no other op in flight
// touches, so that the store's group commit can share fsyncs among them.
//
// The goroutines are explicit rather than b.RunParallel's, whose count is
// a multiple of GOMAXPROCS: 16 writers stay 16 on any machine and -cpu.
func BenchmarkStoreWriteParallel(b *testing.B) {
	svcs := writeFixture()
	s := openBolt(b, b.TempDir(), svcs)
	b.ReportAllocs()
	b.ResetTimer()
	// At most 16 consecutive indexes are in flight: distinct services, as
	// 16 < writeIDs.
	samples, elapsed := runClients(b, writers, func(i int) error { return s.UpdateService(svcs[i%len(svcs)]) })
	b.StopTimer()
	reportLatency(b, samples)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
}

// runClients runs op for 0..b.N-1 from clients goroutines, handing the
// indexes out one by one, and returns each op's latency and the wall time
// of the whole run. The first error fails the benchmark.
func runClients(b *testing.B, clients int, op func(i int) error) ([]time.Duration, time.Duration) {
	samples := make([]time.Duration, b.N)
	errs := make(chan error, clients)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					errs <- err
					return
				}
				samples[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return samples, elapsed
}

// BenchmarkStoreWriteMemory is BenchmarkStoreWrite on the in-memory store:
// the cost of encoding, indexing and the copy-on-write trees without a
// disk, for reference.
func BenchmarkStoreWriteMemory(b *testing.B) {
	svcs := writeFixture()
	s := state.NewMemory()
	b.Cleanup(func() { _ = s.Close() })
	seed(b, s, svcs)
	b.ReportAllocs()
	b.ResetTimer()
	samples := timeOps(b, func(i int) error { return s.UpdateService(svcs[i%len(svcs)]) })
	b.StopTimer()
	reportLatency(b, samples)
}

// timeOps runs op for 0..b.N-1, one after another, and returns each op's
// latency. An error fails the benchmark.
func timeOps(b *testing.B, op func(i int) error) []time.Duration {
	samples := make([]time.Duration, b.N)
	for i := range b.N {
		start := time.Now()
		if err := op(i); err != nil {
			b.Fatal(err)
		}
		samples[i] = time.Since(start)
	}
	return samples
}

// lookup finds a service by name in a store.
type lookup func(state.Store, string) (*types.Service, error)

// byIndex is the look-up as the store does it: one get in the name index,
// one in the services bucket.
func byIndex(s state.Store, name string) (*types.Service, error) { return s.GetServiceByName(name) }

// byScan is the look-up of the original design, which the name index
// replaced: decode every service and compare names.
func byScan(s state.Store, name string) (*types.Service, error) {
	var found *types.Service
	err := s.View(func(r state.Reader) error {
		all, err := r.ListServices()
		if err != nil {
			return err
		}
		for _, svc := range all {
			if svc.Name == name {
				found = svc
				return nil
			}
		}
		return &state.NotFoundError{Kind: types.KindService, Key: name, ByName: true}
	})
	return found, err
}

// BenchmarkGetServiceByName looks services up by name in a bolt store of
// 10,000 services, through the name index and by full scan. The scan
// sub-benchmark, which runs second, also reports speedup: its p50 over the
// indexed one's in the same run. (A third sub-benchmark for it would be a
// row of fake timings: nothing in it is timed.)
func BenchmarkGetServiceByName(b *testing.B) {
	s := openBolt(b, b.TempDir(), lookupFixture())
	var indexedP50 time.Duration
	for _, c := range []struct {
		name string
		get  lookup
	}{{"indexed", byIndex}, {"scan", byScan}} {
		b.Run(c.name, func(b *testing.B) {
			samples := make([]time.Duration, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				name := serviceName(i * lookupStride % lookupServices)
				start := time.Now()
				svc, err := c.get(s, name)
				samples[i] = time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if svc.Name != name {
					b.Fatalf("looked up %q, got %q", name, svc.Name)
				}
			}
			b.StopTimer()
			p50 := reportLatency(b, samples).p50
			switch {
			case c.name == "indexed":
				indexedP50 = p50
			case indexedP50 > 0: // not when -bench filtered indexed out
				b.ReportMetric(float64(p50)/float64(indexedP50), "speedup")
			}
		})
	}
}

var _ = Describe("the write fixture", func() {
	It("encodes to about 2 KB of JSON", func() {
		for _, svc := range writeFixture() {
			data, err := types.Encode(svc)
			Expect(err).NotTo(HaveOccurred())
			Expect(len(data)).To(BeNumerically("~", recordBytes, recordBytes/10))
		}
	})
})
