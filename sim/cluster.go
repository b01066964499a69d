package sim

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/warren-orchestrator/warren/backends/fake"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Broken selects a deliberately wrong variant of the system, to prove that
// the checks catch what they claim to. Test use only.
type Broken int

// Broken variants.
const (
	BrokenNone Broken = iota
	// BrokenAckBeforeCommit acknowledges a client write when the leader
	// appends it, before a majority holds it.
	BrokenAckBeforeCommit
	// BrokenNoFailoverGrace lets a new leader mark nodes down before they
	// had time to reach it.
	BrokenNoFailoverGrace
	// BrokenIgnoreVolumes hides volumes from the scheduler, so it places
	// tasks without volume affinity.
	BrokenIgnoreVolumes
	// BrokenExtraFsync makes every durable change on a manager sync twice:
	// one more fsync on the commit path.
	BrokenExtraFsync
	// BrokenSecretsEveryNode makes the leader send, with every task a node
	// is to run, every secret of the cluster, used by the task or not.
	BrokenSecretsEveryNode
	// BrokenSecretsLatest makes the leader send the newest version of each
	// secret, not the one the task was made with.
	BrokenSecretsLatest
	// BrokenSecretsLinger makes the workers' runtimes keep the secrets of
	// their tasks after the tasks stop and are removed.
	BrokenSecretsLinger
	// BrokenSecretsNone makes the leader send no secret at all.
	BrokenSecretsNone
)

// Config is the shape of a simulated cluster.
type Config struct {
	Seed     uint64
	Managers int
	Workers  int
	// Labels are node labels by worker index (0-based).
	Labels  map[int]map[string]string
	Net     NetConfig
	Disk    DiskConfig
	Raft    RaftConfig
	Runtime fake.Knobs
	// TTL and Grace of the leader's dispatcher.
	TTL, Grace time.Duration
	Broken     Broken
	// Trace, when set, receives every trace line.
	Trace io.Writer
}

// DefaultConfig is a LAN of 3 managers and 5 workers.
func DefaultConfig() Config {
	return Config{
		Managers: 3, Workers: 5,
		Net:     NetConfig{LatencyMin: 100 * time.Microsecond, LatencyMax: 500 * time.Microsecond},
		Disk:    DiskConfig{FsyncMin: 200 * time.Microsecond, FsyncMax: 2 * time.Millisecond},
		Raft:    DefaultRaft,
		Runtime: fake.Knobs{StartLatency: 300 * time.Millisecond, StopLatency: 200 * time.Millisecond},
		TTL:     3 * time.Second, Grace: 3 * time.Second,
	}
}

// Violation is a broken invariant: the run stops at the first.
type Violation struct {
	Invariant string
	At        time.Duration
	Detail    string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("invariant %q broken at %v: %s", v.Invariant, v.At, v.Detail)
}

// Cluster is one simulated cluster and everything that checks it.
type Cluster struct {
	cfg      Config
	eng      *Engine
	net      *Network
	managers []*manager
	workers  []*worker
	client   *client
	tl       *Timeline

	// What the checks remember.
	leaders   map[uint64]string      // term -> leader
	committed map[uint64]Entry       // index -> the entry first applied there
	acked     map[uint64]uint64      // write ID -> index it was acknowledged at
	ackedAt   map[uint64]uint64      // index -> write ID acknowledged there
	volumes   map[string]*volumeLife // local volumes, by name
	tasks     map[string]*taskRec    // every task, as first committed with a node
	running   map[string]string      // task ID -> the worker running it
	upSince   map[string]time.Duration
	once      map[string]bool // the events recorded once (eventOnce)
	violation *Violation

	// What the steps made: the run's keyring and secret values, and the
	// IDs of the services they created.
	secrets  *secretBook
	services serviceIDs
}

// New builds a cluster; Start boots it.
func New(cfg Config) *Cluster {
	c := &Cluster{
		cfg: cfg, eng: NewEngine(cfg.Seed, cfg.Trace),
		leaders: map[uint64]string{}, committed: map[uint64]Entry{},
		acked: map[uint64]uint64{}, ackedAt: map[uint64]uint64{},
		volumes: map[string]*volumeLife{}, tasks: map[string]*taskRec{},
		running: map[string]string{}, upSince: map[string]time.Duration{}, once: map[string]bool{},
		secrets:  newSecretBook(cfg.Seed),
		services: serviceIDs{made: map[string]int{}, current: map[string]string{}},
	}
	c.net = newNetwork(c.eng, cfg.Net)
	var ids []string
	for i := range cfg.Managers {
		ids = append(ids, fmt.Sprintf("manager-%d", i+1))
	}
	for _, id := range ids {
		c.managers = append(c.managers, newManager(c, id, ids))
	}
	for i := range cfg.Workers {
		c.workers = append(c.workers, newWorker(c, fmt.Sprintf("worker-%d", i+1)))
	}
	c.client = newClient(c)
	c.tl = &Timeline{Seed: cfg.Seed}
	for _, m := range c.managers {
		c.tl.Managers = append(c.tl.Managers, m.id)
	}
	for _, w := range c.workers {
		c.tl.Workers = append(c.tl.Workers, w.id)
	}
	return c
}

// Engine is the cluster's event loop.
func (c *Cluster) Engine() *Engine { return c.eng }

// Timeline is what the run recorded so far.
func (c *Cluster) Timeline() *Timeline { return c.tl }

// Start boots every node and registers the workers with the cluster.
func (c *Cluster) Start() {
	for _, m := range c.managers {
		m.boot()
	}
	for _, w := range c.workers {
		w.boot()
		c.upSince[w.id] = c.eng.Elapsed()
	}
	for i, w := range c.workers {
		n := &types.Node{
			ID: w.id, Role: types.RoleWorker, Address: fmt.Sprintf("10.0.0.%d", i+10), Hostname: w.id,
			Labels:    c.cfg.Labels[i],
			Resources: &types.NodeResources{CPUCores: 4, MemoryBytes: 8 << 30, DiskBytes: 100 << 30},
			Status:    types.NodeReady, Availability: types.NodeActive,
			LastHeartbeat: c.eng.Now(), CreatedAt: c.eng.Now(),
		}
		c.Submit(&fsm.RegisterNode{Node: n})
	}
	c.eng.After(time.Second, c.sample)
}

// Run advances the simulation to until, checking the invariants after
// every event.
func (c *Cluster) Run(until time.Duration) error {
	if c.violation != nil {
		return c.violation
	}
	err := c.eng.Run(until, func() error {
		if c.violation != nil {
			return c.violation
		}
		return nil
	})
	c.tl.End = c.eng.Elapsed()
	c.tl.TraceHash = c.eng.TraceHash()
	return err
}

func (c *Cluster) dispatcherConfig() dispatcher.Config {
	if c.cfg.Broken == BrokenNoFailoverGrace {
		return dispatcher.Config{TTL: c.cfg.TTL}
	}
	return dispatcher.Config{TTL: c.cfg.TTL, Grace: c.cfg.Grace}
}

func (c *Cluster) fail(invariant, format string, args ...any) {
	if c.violation != nil {
		return
	}
	c.violation = &Violation{Invariant: invariant, At: c.eng.Elapsed(), Detail: fmt.Sprintf(format, args...)}
	c.eng.Tracef("VIOLATION %s: %s", invariant, c.violation.Detail)
	c.event("", "invariant broken: %s", c.violation.Error())
}

func (c *Cluster) event(node, format string, args ...any) {
	c.tl.Events = append(c.tl.Events, Event{At: c.eng.Elapsed(), Node: node, Text: fmt.Sprintf(format, args...)})
}

// eventOnce records an event the first time its text happens on node.
func (c *Cluster) eventOnce(node, format string, args ...any) {
	key := node + " " + fmt.Sprintf(format, args...)
	if c.once[key] {
		return
	}
	c.once[key] = true
	c.event(node, format, args...)
}

// led is called when a manager wins an election.
func (c *Cluster) led(id string, term uint64) {
	if prev, ok := c.leaders[term]; ok && prev != id {
		c.fail("one leader per term", "term %d has two leaders: %s and %s", term, prev, id)
		return
	}
	c.leaders[term] = id
	for i := range c.tl.Leaders {
		if c.tl.Leaders[i].To == 0 {
			c.tl.Leaders[i].To = c.eng.Elapsed()
		}
	}
	c.tl.Leaders = append(c.tl.Leaders, LeaderSpan{Manager: id, Term: term, From: c.eng.Elapsed()})
	c.event(id, "leads term %d", term)
}

// applied is called when a manager applies a committed entry, with the
// result of applying it: every manager must apply the same entry at the
// same index, and an acknowledged write must be the one there.
func (c *Cluster) applied(m *manager, idx uint64, e Entry, result error, before map[string]int) {
	id := m.id
	first, seen := c.committed[idx]
	if !seen {
		c.committed[idx] = e
		if result == nil {
			c.firstCommit(m, e)
			if p, ok := e.cmd.(*fsm.PlanTasks); ok && before != nil {
				c.checkReplicas(before, m, p)
			}
		}
	} else if first.Term != e.Term || first.Write != e.Write || string(first.Data) != string(e.Data) {
		c.fail("committed entries agree", "%s applied at index %d an entry of term %d, but term %d was committed there", id, idx, e.Term, first.Term)
	}
	if w, ok := c.ackedAt[idx]; ok && w != e.Write {
		c.fail("no acknowledged write is lost", "write %d was acknowledged at index %d, but %s applied another entry there", w, idx, id)
	}
}

// meantToRun counts, for the services a plan touches, the tasks meant to
// run: all of them for a replicated service (key: service ID), per node for
// a global one (key: service ID + "@" + node).
func meantToRun(m *manager, p *fsm.PlanTasks) (map[string]int, map[string]*types.Service) {
	counts, svcs := map[string]int{}, map[string]*types.Service{}
	for _, t := range p.Upsert {
		if _, done := svcs[t.ServiceID]; done {
			continue
		}
		s, err := m.store.GetService(t.ServiceID)
		if err != nil {
			continue // gone: its tasks go with it
		}
		svcs[s.ID] = s
		tasks, err := m.store.ListContainersByService(s.ID)
		if err != nil {
			panic(err)
		}
		for _, t := range tasks {
			if t.DesiredState != types.ContainerRunning {
				continue
			}
			if s.Mode == types.ModeGlobal {
				counts[s.ID+"@"+t.NodeID]++
			} else {
				counts[s.ID]++
			}
		}
	}
	return counts, svcs
}

// checkReplicas checks that a plan never makes a service run more tasks
// than it allows: its replicas, or one per node for a global service. A
// plan made before a scale-down may commit after it (the next plan retires
// the extra tasks), so what counts is that a plan does not add tasks beyond
// the allowance, given the counts before it applied.
func (c *Cluster) checkReplicas(before map[string]int, m *manager, p *fsm.PlanTasks) {
	after, svcs := meantToRun(m, p)
	for _, key := range slices.Sorted(maps.Keys(after)) {
		id, node, global := strings.Cut(key, "@")
		s := svcs[id]
		allowed := 1
		if !global {
			allowed = s.Replicas
		}
		if after[key] > allowed && after[key] > before[key] {
			where := ""
			if global {
				where = " on " + node
			}
			c.fail("running replicas never exceed what the service allows",
				"a plan raised service %s to %d tasks meant to run%s, for %d allowed", s.Name, after[key], where, allowed)
			return
		}
	}
}

// firstCommit learns from a command the first time it commits and
// applies on m: where local volumes are pinned and which are deleted, the
// tasks placed, which secrets are deleted, which nodes are marked down.
func (c *Cluster) firstCommit(m *manager, e Entry) {
	switch cmd := e.cmd.(type) {
	case *fsm.PlanTasks:
		for _, v := range cmd.Pin {
			c.pinned(v, cmd)
		}
		c.placed(cmd)
	case *fsm.CreateVolume:
		c.volumeCreated(cmd.Volume)
	case *fsm.DeleteVolume:
		c.volumeDeleted(m, cmd)
	case *fsm.DeleteSecret:
		c.secrets.deleted(cmd.ID)
	case *fsm.DeleteService:
		c.event("", "service %s deleted", cmd.ID)
	case *fsm.SetNodeStatus:
		c.markedDown(cmd)
	}
}

// markedDown checks that a node marked down really had been out of touch:
// with no message loss, a worker that has been up and connected to the
// managers for longer than the TTL plus a few heartbeats is never marked
// down (after a failover, the grace period is what ensures this).
func (c *Cluster) markedDown(st *fsm.SetNodeStatus) {
	c.event(st.NodeID, "marked %s", st.Status)
	if st.Status != types.NodeDown || c.cfg.Net.Loss > 0 {
		return
	}
	since, up := c.upSince[st.NodeID]
	if up && c.eng.Elapsed()-since > c.cfg.TTL+4*HeartbeatInterval+c.cfg.Raft.ElectionMax {
		c.fail("no node is marked down while it is up", "%s marked down at %v, but it has been up and connected since %v", st.NodeID, c.eng.Elapsed(), since)
	}
}

// connectivity recomputes which workers are up and can reach a majority of
// managers; call after every fault.
func (c *Cluster) connectivity() {
	for _, w := range c.workers {
		reach := 0
		for _, m := range c.managers {
			if m.raft.alive && c.net.reachable(w.id, m.id) {
				reach++
			}
		}
		ok := w.alive && reach >= len(c.managers)/2+1
		_, was := c.upSince[w.id]
		switch {
		case ok && !was:
			c.upSince[w.id] = c.eng.Elapsed()
		case !ok:
			delete(c.upSince, w.id)
		}
	}
}

// workerStepped checks what a worker runs after its agent acted: a task
// runs on one node only, a task with a local volume only on the volume's
// node, and secrets are only where a task uses them.
func (c *Cluster) workerStepped(w *worker) {
	cs, err := w.rt.Containers()
	if err != nil {
		panic(err)
	}
	for _, ct := range cs {
		if ct.State != types.ContainerPending && ct.State != types.ContainerRunning {
			if c.running[ct.TaskID] == w.id {
				delete(c.running, ct.TaskID)
			}
			continue
		}
		if other, ok := c.running[ct.TaskID]; ok && other != w.id {
			if ow := c.worker(other); ow != nil && ow.alive && ow.runs(ct.TaskID) {
				c.fail("no task runs on two nodes", "task %s runs on %s and %s", ct.TaskID, other, w.id)
				return
			}
		}
		c.running[ct.TaskID] = w.id
		if name, node, away := c.awayFromVolume(ct.TaskID, w.id); away {
			c.fail("a task with a local volume runs on its node", "task %s mounts volume %s of %s but runs on %s", ct.TaskID, name, node, w.id)
			return
		}
	}
	c.checkSecrets(w)
}

func (c *Cluster) isCommitted(idx uint64) bool {
	_, ok := c.committed[idx]
	return ok
}

// checkPlan checks the scheduler's decisions before they are proposed: a
// task is never placed away from a local volume it mounts. (The fsm refuses
// such a plan too, so a faulty scheduler would otherwise show only as a
// cluster that never converges.)
func (c *Cluster) checkPlan(m *manager, p *fsm.PlanTasks) {
	if p == nil {
		return
	}
	pins := map[string]string{}
	for _, v := range p.Pin {
		pins[v.Name] = v.NodeID
	}
	for _, t := range p.Upsert {
		if t.NodeID == "" || t.DesiredState != types.ContainerRunning {
			continue
		}
		for _, mt := range t.Mounts {
			node, ok := pins[mt.Source]
			if v, err := m.store.GetVolumeByName(mt.Source); err == nil && v.Driver == "local" && v.NodeID != "" {
				node, ok = v.NodeID, true
			}
			if ok && node != t.NodeID {
				c.fail("a task with a local volume runs on its node", "%s's scheduler placed task %s on %s, away from volume %s on %s", m.id, t.ID, t.NodeID, mt.Source, node)
				return
			}
		}
	}
}

func (c *Cluster) worker(id string) *worker {
	for _, w := range c.workers {
		if w.id == id {
			return w
		}
	}
	return nil
}

func (w *worker) runs(taskID string) bool {
	cs, _ := w.rt.Containers()
	for _, ct := range cs {
		if ct.TaskID == taskID {
			return ct.State == types.ContainerPending || ct.State == types.ContainerRunning
		}
	}
	return false
}

// health is what the worker's runtime says of a task's health check.
func (w *worker) health(taskID string) types.HealthStatus {
	cs, _ := w.rt.Containers()
	for _, ct := range cs {
		if ct.TaskID == taskID {
			return ct.Health
		}
	}
	return ""
}

// sample records the tasks running per worker, once a second.
func (c *Cluster) sample() {
	s := TaskSample{At: c.eng.Elapsed(), Running: map[string]int{}}
	for _, w := range c.workers {
		if !w.alive {
			continue
		}
		cs, _ := w.rt.Containers()
		for _, ct := range cs {
			if ct.State == types.ContainerRunning {
				s.Running[w.id]++
			}
		}
	}
	c.tl.Tasks = append(c.tl.Tasks, s)
	c.eng.After(time.Second, c.sample)
}

// Submit proposes a command to the cluster as an operator would, retrying
// until a leader commits it, after the operator's earlier commands.
func (c *Cluster) Submit(cmd fsm.Command) {
	c.client.operate(operation{what: cmd.Kind().String(), build: func() (fsm.Command, error) { return cmd, nil }})
}

// Leader is the manager that leads now and has applied its term's no-op,
// or nil.
func (c *Cluster) Leader() *manager {
	var best *manager
	for _, m := range c.managers {
		if m.raft.alive && m.leader != nil && (best == nil || m.raft.term > best.raft.term) {
			best = m
		}
	}
	return best
}
