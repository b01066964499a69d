package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	wctd "github.com/warren-orchestrator/warren/backends/containerd"
	"github.com/warren-orchestrator/warren/backends/containerd/ctdtest"
	"github.com/warren-orchestrator/warren/backends/containerd/testimage"
	"github.com/warren-orchestrator/warren/e2e/proc"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// containerStartReplicas is how many containers each iteration starts.
const containerStartReplicas = 20

// BenchmarkContainerStart times a service of 20 replicas of the test image,
// from `service create` until the client sees every task running, on a
// one-node cluster (a `warren cluster init` process, manager and worker)
// with a containerd of its own; and, in the same run, the floor: `ctr run
// -d` of the same image 20 times in a row on the same containerd.
//
// Reports, for Warren: p50-ms (each task: from the create to the client
// seeing it running) and total-ms (until all 20 are); for the floor:
// floor-p50-ms (one `ctr run -d`) and floor-total-ms (the 20 of them). The
// service is removed, and its containers gone, with the timer stopped.
func BenchmarkContainerStart(b *testing.B) {
	if err := ctdtest.Requirements(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ctd")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	ctd, err := ctdtest.Start(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ctdtest.NetworkBench.Remove() }) // last: after the containers
	b.Cleanup(func() { _ = ctd.Stop() })

	bin, err := proc.Build(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	cluster, err := proc.StartCluster(ctx, proc.Config{Bin: bin, Root: b.TempDir(), Managers: 1, LogLevel: "info",
		Runtime: []string{"--runtime", "containerd", "--containerd", ctd.Address,
			"--bridge", ctdtest.NetworkBench.Bridge, "--subnet", ctdtest.NetworkBench.Subnet}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cluster.Kill)
	m := cluster.Managers[0]
	archive := filepath.Join(b.TempDir(), "busybox.tar")
	if err := testimage.WriteFile(archive, testimage.Options{}); err != nil {
		b.Fatal(err)
	}
	if _, err := m.CLI(ctx, []string{m.APIAddr}, "image", "load", "--containerd", ctd.Address, archive); err != nil {
		b.Fatal(err)
	}
	client, err := cluster.Client()
	if err != nil {
		b.Fatal(err)
	}

	var per, floorPer, total, floorTotal []time.Duration
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("start-%d", i)
		t0 := time.Now()
		svc := &types.Service{Name: name, Image: testimage.DefaultName, Replicas: containerStartReplicas,
			Mode: types.ModeReplicated, DeployStrategy: types.DeployRolling}
		created, err := client.CreateService(ctx, svc)
		if err != nil {
			b.Fatal(err)
		}
		seen, err := awaitRunning(ctx, client, created.ID, t0)
		if err != nil {
			b.Fatalf("%v; the end of the node's log:\n%s", err, m.Tail(30))
		}
		total = append(total, time.Since(t0))
		per = append(per, seen...)

		t1 := time.Now()
		for j := range containerStartReplicas {
			s := time.Now()
			out, err := exec.Command("ctr", "-a", ctd.Address, "-n", wctd.DefaultNamespace, "run", "-d",
				testimage.DefaultName, fmt.Sprintf("floor-%d-%d", i, j)).CombinedOutput()
			if err != nil {
				b.Fatalf("ctr run: %v: %s", err, out)
			}
			floorPer = append(floorPer, time.Since(s))
		}
		floorTotal = append(floorTotal, time.Since(t1))

		b.StopTimer()
		if err := client.DeleteService(ctx, name); err != nil {
			b.Fatal(err)
		}
		if err := ctd.Purge(); err != nil { // the floor's containers, and the service's once stopped
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(millis(summarise(per).p50), "p50-ms")
	b.ReportMetric(millis(summarise(total).p50), "total-ms")
	b.ReportMetric(millis(summarise(floorPer).p50), "floor-p50-ms")
	b.ReportMetric(millis(summarise(floorTotal).p50), "floor-total-ms")
}

// awaitRunning polls the service's tasks until every replica runs, and
// returns for each the time from t0 until it was first seen running.
func awaitRunning(ctx context.Context, client *api.Client, serviceID string, t0 time.Time) ([]time.Duration, error) {
	first := map[string]time.Duration{}
	deadline := time.Now().Add(2 * time.Minute)
	for len(first) < containerStartReplicas {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d tasks running after 2 minutes", len(first), containerStartReplicas)
		}
		tasks, err := client.ListContainers(ctx, serviceID, "", false)
		if err != nil {
			return nil, err
		}
		now := time.Since(t0)
		for _, t := range tasks {
			if t.ActualState == types.ContainerRunning {
				if _, ok := first[t.ID]; !ok {
					first[t.ID] = now
				}
			}
			if t.ActualState == types.ContainerFailed {
				return nil, fmt.Errorf("task %s failed: %s", t.ID, t.Error)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	out := make([]time.Duration, 0, len(first))
	for _, d := range first {
		out = append(out, d)
	}
	slices.Sort(out)
	return out, nil
}
