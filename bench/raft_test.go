package bench

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/warren-orchestrator/warren/backends/pki"
	wraft "github.com/warren-orchestrator/warren/backends/raft"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// replicatedClients is the client count of BenchmarkReplicatedWriteParallel.
const replicatedClients = 64

// startManagers starts a 3-manager cluster on loopback: hashicorp/raft over
// TCP with mutual TLS, every manager with its own data directory (every
// append fdatasynced in raft.wal), and creates svcs through it. It returns
// the leader.
func startManagers(b *testing.B, svcs []*types.Service) *wraft.Node {
	b.Helper()
	ca, err := pki.NewCA("bench", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	var nodes []*wraft.Node
	for i := range 3 {
		dir := b.TempDir()
		if err := checkOnDisk(dir); err != nil {
			b.Fatal(err)
		}
		id := fmt.Sprintf("m%d", i+1)
		cert, err := ca.Issue(pki.Request{CommonName: id, Role: pki.RoleManager, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		n, err := wraft.Open(wraft.Config{
			ID: id, DataDir: dir, Bind: "127.0.0.1:0",
			ServerTLS: pki.ServerConfig(ca.Pool(), cert, pki.RequireRole(pki.RoleManager)),
			ClientTLS: pki.ClientConfig(ca.Pool(), cert, pki.RequireRole(pki.RoleManager)),
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = n.Close() })
		nodes = append(nodes, n)
	}
	leader := nodes[0]
	if err := leader.Bootstrap(); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !leader.IsLeader(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the bootstrapped manager did not become leader")
		}
	}
	for i, n := range nodes[1:] {
		if err := leader.AddVoter(fmt.Sprintf("m%d", i+2), n.Addr()); err != nil {
			b.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(svcs))
	for i := range replicatedClients {
		wg.Go(func() {
			for j := i; j < len(svcs); j += replicatedClients {
				if _, err := leader.Apply(&fsm.CreateService{Service: svcs[j]}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return leader
}

// BenchmarkReplicatedWrite times one client's writes (an update of a ~2 KB
// service) through the leader of 3 managers: raft append fsynced on the
// leader and a follower, commit, and apply on the leader.
func BenchmarkReplicatedWrite(b *testing.B) {
	svcs := writeFixture()
	leader := startManagers(b, svcs)
	b.ReportAllocs()
	b.ResetTimer()
	samples := timeOps(b, func(i int) error {
		_, err := leader.Apply(&fsm.UpdateService{Service: svcs[i%len(svcs)]})
		return err
	})
	b.StopTimer()
	reportLatency(b, samples)
}

// BenchmarkReplicatedWriteParallel runs the writes of BenchmarkReplicatedWrite
// from 64 clients at once; raft batches what arrives while an append is in
// flight.
func BenchmarkReplicatedWriteParallel(b *testing.B) {
	svcs := writeFixture()
	leader := startManagers(b, svcs)
	b.ReportAllocs()
	b.ResetTimer()
	// At most 64 consecutive ops in flight: distinct services.
	samples, elapsed := runClients(b, replicatedClients, func(i int) error {
		_, err := leader.Apply(&fsm.UpdateService{Service: svcs[i%len(svcs)]})
		return err
	})
	b.StopTimer()
	reportLatency(b, samples)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
}
