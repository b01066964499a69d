package raftsim

import (
	"fmt"
	"strings"
	"time"

	"github.com/warren-orchestrator/warren/sim"
)

// actKind is what an action of the plan does.
type actKind int

const (
	actWrite     actKind = iota // a setup write (a service, a secret, a scale)
	actLoad                     // start the clients
	actCrash                    // crash a manager (restart after span, if set)
	actRestart                  // restart a manager
	actPartition                // cut the network (heal after span, if set)
	actHeal                     // end every partition
	actStall                    // stall a manager's disk for span
	actSkip                     // a step about workers or containers
	actArm                      // arm a crash at a failpoint (restart after span)
)

// action is one timed action of a run.
type action struct {
	at     time.Duration
	kind   actKind
	target string // actCrash, actRestart: a manager or "leader"
	span   time.Duration
	groups [][]string // actPartition
	rate   int        // actLoad
	op     opKind     // actWrite
	key    string
	value  string
	what   string // actSkip: the step
	// actArm: the failpoint of backends/raft the crash waits for.
	failpoint string
	seq       int
}

func (a action) String() string {
	at := fmt.Sprintf("at %v ", a.at)
	switch a.kind {
	case actWrite:
		return at + fmt.Sprintf("%s %s", a.op, a.key)
	case actLoad:
		return at + fmt.Sprintf("load %d/s for %v", a.rate, a.span)
	case actCrash:
		if a.span > 0 {
			return at + fmt.Sprintf("crash %s, restart after %v", a.target, a.span)
		}
		return at + "crash " + a.target
	case actRestart:
		return at + "restart " + a.target
	case actPartition:
		var gs []string
		for _, g := range a.groups {
			gs = append(gs, "["+strings.Join(g, " ")+"]")
		}
		if a.span > 0 {
			return at + fmt.Sprintf("partition %s, heal after %v", strings.Join(gs, " "), a.span)
		}
		return at + "partition " + strings.Join(gs, " ")
	case actHeal:
		return at + "heal"
	case actStall:
		return at + fmt.Sprintf("disk-stall %s for %v", a.target, a.span)
	case actArm:
		return at + fmt.Sprintf("crash the next manager to pass failpoint %s, restart after %v", a.failpoint, a.span)
	}
	return at + a.what
}

// plan is what a seed makes of a scenario before the cluster starts: the
// network's shape, the timed actions (the scenario's steps and the chaos
// faults drawn from the seed) and the shared objects. It is the part of
// a run that replays exactly from the seed.
type plan struct {
	net     NetConfig
	disk    DiskConfig
	actions []action
	shared  []string
	// failpoints is nil when the run arms none.
	failpoints *failpointPlan
}

// drawPlan maps the scenario onto the consensus layer and draws its chaos
// from src with tier A's distributions: the worst latency, the loss, then
// each fault's time, kind, length and target (always a manager here). Workers, containers and
// their containers are not simulated here: steps and faults about them
// are kept in the plan as skipped, so the plan still lines up with the
// scenario's. Disks are: each manager's raft.db writes wait a drawn fsync
// latency, and a disk stall holds them. With failpoints, their parameters
// and crashes are drawn last, so that the rest of a seed's plan is the
// same with them and without.
func drawPlan(sc *sim.Scenario, src *Source, failpoints bool) *plan {
	p := drawScenario(sc, src)
	if failpoints {
		drawFailpoints(p, sc.Duration.D(), src)
	}
	return p
}

func drawScenario(sc *sim.Scenario, src *Source) *plan {
	p := &plan{net: NetConfig{LatencyMin: 100 * time.Microsecond, LatencyMax: 500 * time.Microsecond, Loss: sc.Network.Loss}}
	if r := sc.Network.Latency; r != nil {
		p.net.LatencyMin, p.net.LatencyMax = r[0].D(), r[1].D()
	}
	p.disk = DiskConfig{FsyncMin: 200 * time.Microsecond, FsyncMax: 2 * time.Millisecond}
	if r := sc.Disk.Fsync; r != nil {
		p.disk.FsyncMin, p.disk.FsyncMax = r[0].D(), r[1].D()
	}
	managers := sc.Cluster.Managers
	manager := func(name string) bool {
		var i int
		_, err := fmt.Sscanf(name, "manager-%d", &i)
		return name == "leader" || err == nil && i >= 1 && i <= managers
	}
	for _, st := range sc.Steps {
		at := st.At.D()
		switch {
		case st.Service != nil:
			key := servicePrefix + "svc-" + st.Service.Name
			p.shared = append(p.shared, key)
			p.actions = append(p.actions, action{at: at, kind: actWrite, op: opCreate, key: key, value: "setup"})
		case st.Secret != nil:
			key := secretPrefix + "sec-" + st.Secret.Name
			p.actions = append(p.actions, action{at: at, kind: actWrite, op: opCreate, key: key, value: "setup"})
		case st.Scale != nil:
			key := servicePrefix + "svc-" + st.Scale.Service
			p.actions = append(p.actions, action{at: at, kind: actWrite, op: opUpdate, key: key, value: fmt.Sprintf("scale-%d", st.Scale.Replicas)})
		case st.Load != nil:
			p.actions = append(p.actions, action{at: at, kind: actLoad, rate: st.Load.Rate, span: st.Load.For.D()})
		case st.Crash != nil && manager(st.Crash.Node):
			p.actions = append(p.actions, action{at: at, kind: actCrash, target: st.Crash.Node, span: st.Crash.RestartAfter.D()})
		case st.Restart != nil && manager(st.Restart.Node):
			p.actions = append(p.actions, action{at: at, kind: actRestart, target: st.Restart.Node})
		case st.Partition != nil:
			var groups [][]string
			for _, g := range st.Partition.Groups {
				var kept []string
				for _, name := range g {
					if manager(name) || name == "client" {
						kept = append(kept, name)
					}
				}
				if len(kept) > 0 {
					groups = append(groups, kept)
				}
			}
			p.actions = append(p.actions, action{at: at, kind: actPartition, groups: groups, span: st.Partition.HealAfter.D()})
		case st.Heal != nil:
			p.actions = append(p.actions, action{at: at, kind: actHeal})
		case st.DiskStall != nil && manager(st.DiskStall.Node):
			p.actions = append(p.actions, action{at: at, kind: actStall, target: st.DiskStall.Node, span: st.DiskStall.For.D()})
		default:
			p.actions = append(p.actions, action{at: at, kind: actSkip, what: describeStep(st)})
		}
	}
	if len(p.shared) == 0 {
		key := servicePrefix + "shared"
		p.shared = append(p.shared, key)
		p.actions = append(p.actions, action{kind: actWrite, op: opCreate, key: key, value: "setup"})
	}
	ch := sc.Chaos
	if ch == nil {
		return p
	}
	if r := ch.LatencyMax; r != nil {
		p.net.LatencyMax = max(p.net.LatencyMin, src.Between(r[0].D(), r[1].D()))
	}
	if len(ch.Loss) == 2 {
		p.net.Loss = ch.Loss[0] + src.Float64()*(ch.Loss[1]-ch.Loss[0])
	}
	p.actions = append(p.actions, action{kind: actSkip, what: fmt.Sprintf("chaos latency-max=%v loss=%.4f faults=%d", p.net.LatencyMax, p.net.Loss, ch.Faults)})
	for range ch.Faults {
		at := src.Between(ch.Window[0].D(), ch.Window[1].D())
		kind := ch.Kinds[src.IntN(len(ch.Kinds))]
		span := src.Between(500*time.Millisecond, 5*time.Second)
		target := fmt.Sprintf("manager-%d", src.IntN(managers)+1)
		switch kind {
		case "disk-stall":
			p.actions = append(p.actions, action{at: at, kind: actStall, target: target, span: span})
		case "crash-leader":
			p.actions = append(p.actions, action{at: at, kind: actCrash, target: "leader", span: span})
		case "crash":
			p.actions = append(p.actions, action{at: at, kind: actCrash, target: target, span: span})
		case "partition":
			// One manager cut away, or the leader with the client.
			groups := [][]string{{target}}
			if src.Chance(0.5) {
				groups = [][]string{{"leader", "client"}}
			}
			p.actions = append(p.actions, action{at: at, kind: actPartition, groups: groups, span: span})
		default:
			p.actions = append(p.actions, action{at: at, kind: actSkip, what: fmt.Sprintf("chaos %s for %v", kind, span)})
		}
	}
	return p
}

func describeStep(st sim.Step) string {
	switch {
	case st.Volume != nil:
		return "volume " + st.Volume.Name
	case st.DiskStall != nil:
		return "disk-stall " + st.DiskStall.Node
	case st.CrashTask != nil:
		return "crash-task " + st.CrashTask.Node
	case st.Crash != nil:
		return "crash " + st.Crash.Node
	case st.Restart != nil:
		return "restart " + st.Restart.Node
	case st.UpdateSecret != nil:
		return "update-secret " + st.UpdateSecret.Name
	case st.DeleteSecret != nil:
		return "delete-secret " + st.DeleteSecret.Name
	case st.DeleteVolume != nil:
		return "delete-volume " + st.DeleteVolume.Name
	case st.DeleteService != nil:
		return "delete-service " + st.DeleteService.Name
	}
	return "step"
}
