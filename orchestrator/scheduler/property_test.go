package scheduler_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/scheduler"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Place on random clusters", func() {
	When("given 200 seeded random clusters", func() {
		It("places each task on a node that passes every filter, and refuses it only when none does", func() {
			r := rand.New(rand.NewPCG(20251010, 1))
			var placedN, refusedN int
			for i := range 200 {
				c, svc, tasks := randomCluster(r)
				before := snapshot(c, svc, tasks)
				ps := scheduler.Place(c, svc, tasks)
				Expect(snapshot(c, svc, tasks)).To(Equal(before), "cluster %d: inputs mutated", i)
				Expect(scheduler.Place(c, svc, tasks)).To(Equal(ps), "cluster %d: not deterministic", i)

				shuffled := c
				shuffled.Nodes = slices.Clone(c.Nodes)
				r.Shuffle(len(shuffled.Nodes), func(a, b int) {
					shuffled.Nodes[a], shuffled.Nodes[b] = shuffled.Nodes[b], shuffled.Nodes[a]
				})
				Expect(scheduler.Place(shuffled, svc, tasks)).To(Equal(ps), "cluster %d: depends on node order", i)

				Expect(violations(c, svc, tasks, ps)).To(BeEmpty(), "cluster %d", i)
				for _, p := range ps {
					if p.NodeID == "" {
						refusedN++
					} else {
						placedN++
					}
				}
			}
			// Guard the generator: a property that holds because nothing is
			// placed, or nothing refused, proves little.
			Expect(placedN).To(BeNumerically(">", 150))
			Expect(refusedN).To(BeNumerically(">", 100))
		})
	})
})

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// randomCluster draws a small cluster where every filter has a fair chance
// to refuse: nodes down or drained, labels missing, little capacity, host
// ports taken, volumes pinned to nodes that are gone.
func randomCluster(r *rand.Rand) (scheduler.Cluster, *types.Service, []*types.Container) {
	var c scheduler.Cluster
	for i := range r.IntN(8) {
		n := typestest.Node(fmt.Sprintf("n%d", i))
		n.Status = pick(r, types.NodeReady, types.NodeReady, types.NodeReady, types.NodeReady, types.NodeDown, types.NodeDraining)
		n.Availability = pick(r, types.NodeActive, types.NodeActive, types.NodeActive, types.NodeActive, types.NodePause, types.NodeDrain)
		n.Role = pick(r, types.RoleWorker, types.RoleManager)
		n.Labels = pick(r, map[string]string{"zone": "a"}, map[string]string{"zone": "b"}, nil)
		n.Resources = pick(r, nil, &types.NodeResources{CPUCores: 1 + r.IntN(4), MemoryBytes: int64(1+r.IntN(4)) << 30},
			&types.NodeResources{CPUCores: 1 + r.IntN(4), MemoryBytes: int64(1+r.IntN(4)) << 30})
		c.Nodes = append(c.Nodes, n)
	}
	nodeID := func() string {
		if len(c.Nodes) == 0 || r.IntN(8) == 0 {
			return "gone"
		}
		return c.Nodes[r.IntN(len(c.Nodes))].ID
	}
	demand := func(t *types.Container) *types.Container {
		if r.IntN(3) > 0 {
			t.Resources = &types.ResourceRequirements{
				CPUReservation:    pick(r, 0, 0.25, 0.5, 1),
				MemoryReservation: pick[int64](r, 0, 128<<20, 256<<20, 512<<20),
			}
		}
		if r.IntN(3) == 0 {
			publishing(pick(r, 8080, 9090, 9091), pick(r, types.ProtocolTCP, types.ProtocolUDP),
				pick(r, types.PublishHost, "", types.PublishIngress), t)
		}
		return t
	}
	for i := range r.IntN(10) {
		c.Tasks = append(c.Tasks, demand(typestest.Container(fmt.Sprintf("e%d", i), pick(r, svcID, "svc-2"), nodeID())))
	}

	svc := typestest.Service(svcID, "web")
	for _, con := range []string{"node.labels.zone==a", "node.labels.zone!=b", "node.role==worker"} {
		if r.IntN(5) == 0 {
			svc.Constraints = append(svc.Constraints, con)
		}
	}
	for _, name := range []string{"data", "logs"} {
		if r.IntN(3) > 0 {
			continue
		}
		mounting(svc, name)
		switch r.IntN(4) {
		case 0: // does not exist yet
		case 1:
			c.Volumes = append(c.Volumes, typestest.Volume("v-"+name, name, ""))
		case 2:
			c.Volumes = append(c.Volumes, typestest.Volume("v-"+name, name, nodeID()))
		case 3:
			v := typestest.Volume("v-"+name, name, nodeID())
			v.Driver = "nfs"
			c.Volumes = append(c.Volumes, v)
		}
	}

	var tasks []*types.Container
	for i := range 1 + r.IntN(6) {
		node := ""
		if r.IntN(5) == 0 {
			node = nodeID()
		}
		tasks = append(tasks, demand(typestest.Container(fmt.Sprintf("t%d", i), svcID, node)))
	}
	return c, svc, tasks
}

// oracleNode is what the oracle tracks of one node while it replays a call.
type oracleNode struct {
	node        *types.Node
	cpuMilli    int64
	memoryBytes int64
	ports       map[string]bool
}

func hostPorts(t *types.Container) []string {
	var out []string
	for _, p := range t.Ports {
		if p.HostPort != 0 && p.PublishMode != types.PublishIngress {
			out = append(out, fmt.Sprintf("%d/%s", p.HostPort, p.Protocol))
		}
	}
	return out
}

func reservation(t *types.Container) (cpuMilli, memoryBytes int64) {
	if t.Resources == nil {
		return 0, 0
	}
	return int64(math.Round(t.Resources.CPUReservation * 1000)), t.Resources.MemoryReservation
}

// fits is the oracle's own reading of the filters, written apart from the
// scheduler's so that the two must agree rather than share a bug.
func (o *oracleNode) fits(svc *types.Service, t *types.Container) bool {
	n := o.node
	if n.Status != types.NodeReady || n.Availability != types.NodeActive {
		return false
	}
	for _, s := range svc.Constraints {
		c, err := types.ParseConstraint(s)
		if err != nil || !c.Matches(n) {
			return false
		}
	}
	var cpuCap, memCap int64
	if n.Resources != nil {
		cpuCap, memCap = int64(n.Resources.CPUCores)*1000, n.Resources.MemoryBytes
	}
	cpu, mem := reservation(t)
	if (cpu > 0 && o.cpuMilli+cpu > cpuCap) || (mem > 0 && o.memoryBytes+mem > memCap) {
		return false
	}
	for _, p := range hostPorts(t) {
		if o.ports[p] {
			return false
		}
	}
	return true
}

func (o *oracleNode) add(t *types.Container) {
	cpu, mem := reservation(t)
	o.cpuMilli += cpu
	o.memoryBytes += mem
	for _, p := range hostPorts(t) {
		o.ports[p] = true
	}
}

// violations replays the placements in order and reports every one that a
// filter forbids, every refusal where some allowed node existed, and every
// volume pin that is not where its task went.
func violations(c scheduler.Cluster, svc *types.Service, tasks []*types.Container, ps []scheduler.Placement) []string {
	var out []string
	bad := func(i int, format string, args ...any) {
		out = append(out, fmt.Sprintf("task %s: ", tasks[i].ID)+fmt.Sprintf(format, args...))
	}
	nodes := map[string]*oracleNode{}
	for _, n := range c.Nodes {
		nodes[n.ID] = &oracleNode{node: n, ports: map[string]bool{}}
	}
	for _, t := range c.Tasks {
		if o := nodes[t.NodeID]; o != nil {
			o.add(t)
		}
	}
	volumes := map[string]*types.Volume{}
	for _, v := range c.Volumes {
		volumes[v.Name] = v
	}

	for i, t := range tasks {
		p := ps[i]
		if p.TaskID != t.ID || (p.NodeID == "") == (p.Reason == "") {
			bad(i, "placement %+v: want its ID, and a reason exactly when it has no node", p)
			continue
		}
		// The nodes the task may go to: its own if pre-assigned, that of
		// its local volumes if they have one, else any.
		allowed := map[string]bool{}
		for id := range nodes {
			allowed[id] = t.NodeID == "" || id == t.NodeID
		}
		for _, m := range svc.Volumes {
			if v := volumes[m.Source]; v != nil && v.Driver == "local" && v.NodeID != "" {
				for id := range allowed {
					allowed[id] = allowed[id] && id == v.NodeID
				}
			}
		}
		if p.NodeID == "" {
			for id, ok := range allowed {
				if ok && nodes[id].fits(svc, t) {
					bad(i, "refused (%s), but node %s can take it", p.Reason, id)
				}
			}
			if len(p.PinVolumes) > 0 {
				bad(i, "refused, but pins volumes")
			}
			continue
		}
		o := nodes[p.NodeID]
		switch {
		case o == nil:
			bad(i, "placed on %s, which is not in the cluster", p.NodeID)
			continue
		case !allowed[p.NodeID]:
			bad(i, "placed on %s, away from its pre-assigned node or its volumes", p.NodeID)
		case !o.fits(svc, t):
			bad(i, "placed on %s, which a filter refuses", p.NodeID)
		}
		o.add(t)
		for _, v := range p.PinVolumes {
			old := volumes[v.Name]
			switch {
			case v.NodeID != p.NodeID || v.Driver != "local":
				bad(i, "pins volume %s to %s (driver %s)", v.Name, v.NodeID, v.Driver)
			case old != nil && (old.Driver != "local" || old.NodeID != ""):
				bad(i, "pins volume %s, which was not free to pin", v.Name)
			case v.Validate() != nil:
				bad(i, "pins an invalid volume: %v", v.Validate())
			}
			volumes[v.Name] = v
		}
		for _, m := range svc.Volumes {
			if v := volumes[m.Source]; v == nil || (v.Driver == "local" && v.NodeID == "") {
				bad(i, "placed without pinning its volume %s", m.Source)
			}
		}
	}
	return out
}
