package scheduler_test

import (
	"encoding/json"
	"fmt"

	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/scheduler"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

const svcID = "svc-1"

// nodes returns ready, active nodes of 8 CPU and 16 GiB in zone a.
func nodes(ids ...string) []*types.Node {
	out := make([]*types.Node, len(ids))
	for i, id := range ids {
		out[i] = typestest.Node(id)
	}
	return out
}

// pending returns n unscheduled tasks of svc-1: t1, t2, ...
func pending(n int) []*types.Container {
	out := make([]*types.Container, n)
	for i := range out {
		out[i] = typestest.Container(fmt.Sprintf("t%d", i+1), svcID, "")
	}
	return out
}

// running returns n tasks of service svc on node, named prefix-1, ...
func running(n int, prefix, svc, node string) []*types.Container {
	out := make([]*types.Container, n)
	for i := range out {
		out[i] = typestest.Container(fmt.Sprintf("%s-%d", prefix, i+1), svc, node)
	}
	return out
}

func reserving(cpu float64, memoryBytes int64, ts ...*types.Container) []*types.Container {
	for _, t := range ts {
		t.Resources = &types.ResourceRequirements{CPUReservation: cpu, MemoryReservation: memoryBytes}
	}
	return ts
}

func publishing(port int, proto types.Protocol, mode types.PublishMode, ts ...*types.Container) []*types.Container {
	for _, t := range ts {
		t.Ports = append(t.Ports, &types.PortMapping{ContainerPort: 80, HostPort: port, Protocol: proto, PublishMode: mode})
	}
	return ts
}

func mounting(svc *types.Service, names ...string) {
	for _, n := range names {
		svc.Volumes = append(svc.Volumes, &types.VolumeMount{Source: n, Target: "/data/" + n})
	}
}

func nodeIDs(ps []scheduler.Placement) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.NodeID
	}
	return out
}

func reasons(ps []scheduler.Placement) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Reason
	}
	return out
}

// snapshot encodes everything Place is given, to check it changed nothing.
func snapshot(c scheduler.Cluster, svc *types.Service, tasks []*types.Container) string {
	b, err := json.Marshal([]any{c, svc, tasks})
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}
