// Package reconciler compares what services want with the tasks that exist
// and decides the changes: create tasks for missing replicas, retire extra
// ones, restart failed tasks as their RestartPolicy says (a running task
// whose health check fails counts as failed), replace the tasks of lost or
// drained nodes (except those pinned to their node by a local
// volume, which wait for it), and place unscheduled tasks through the
// scheduler. A task whose spec is no longer its service's (a changed
// image, command, environment, mounts, secrets... or a raised ForceUpdate)
// is replaced, a few at a time as the service's UpdateConfig says: a
// rolling update. It is a pure function of the cluster, the time and a seeded
// random source; its decision is one fsm.PlanTasks.
package reconciler

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/scheduler"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// HistoryLimit is how many finished tasks a slot keeps for `service ps`,
// as Swarm's task history limit.
const HistoryLimit = 5

// Cluster is the state a reconciliation looks at.
type Cluster struct {
	Services []*types.Service
	Tasks    []*types.Container
	Nodes    []*types.Node
	Volumes  []*types.Volume
	// SecretVersions is each secret's current version, by ID: a new task
	// is made with it.
	SecretVersions map[string]int
}

// Result is one reconciliation's decision.
type Result struct {
	// Plan holds every change, to be committed as one command; nil when
	// the cluster already is as the services want.
	Plan *fsm.PlanTasks
	// Wake is when a delayed restart falls due (zero if none): reconcile
	// again then, even if nothing else happens.
	Wake time.Time
}

// Reconcile decides the changes that bring c towards what its services
// want. Random task IDs are drawn from r, in a fixed order.
func Reconcile(c Cluster, now time.Time, r *rand.Rand) Result {
	rc := newRun(c, now, r)
	for _, svc := range sortedByID(c.Services) {
		rc.service(svc)
	}
	rc.orphans()
	return rc.result()
}

// run is the working state of one reconciliation.
type run struct {
	now     time.Time
	rand    *rand.Rand
	nodes   map[string]*types.Node
	nodeIDs []string
	volumes []*types.Volume
	byName  map[string]*types.Volume
	tasks   map[string][]*types.Container // by service ID, ID order
	known   map[string]bool               // service IDs
	// holding is every task that occupies a node: what placement counts.
	holding []*types.Container
	upsert  map[string]*types.Container
	deletes []string
	pins    []*types.Volume
	wake    time.Time
	secrets map[string]int
}

func newRun(c Cluster, now time.Time, r *rand.Rand) *run {
	rc := &run{
		now: now, rand: r,
		nodes:   map[string]*types.Node{},
		byName:  map[string]*types.Volume{},
		tasks:   map[string][]*types.Container{},
		known:   map[string]bool{},
		upsert:  map[string]*types.Container{},
		secrets: c.SecretVersions,
	}
	for _, n := range sortedByID(c.Nodes) {
		rc.nodes[n.ID] = n
		rc.nodeIDs = append(rc.nodeIDs, n.ID)
	}
	rc.volumes = slices.Clone(c.Volumes)
	for _, v := range c.Volumes {
		rc.byName[v.Name] = v
	}
	for _, s := range c.Services {
		rc.known[s.ID] = true
	}
	for _, t := range sortedByID(c.Tasks) {
		rc.tasks[t.ServiceID] = append(rc.tasks[t.ServiceID], t)
		if holds(t) {
			rc.holding = append(rc.holding, t)
		}
	}
	return rc
}

// holds reports whether t occupies its node: it is assigned and has not
// finished (a retired task holds its node until it has stopped).
func holds(t *types.Container) bool {
	return t.NodeID != "" && !finished(t)
}

func finished(t *types.Container) bool {
	switch t.ActualState {
	case types.ContainerFailed, types.ContainerComplete, types.ContainerShutdown:
		return true
	}
	return false
}

// unhealthy reports whether t runs, is meant to, and its health check
// fails. Unknown (the start period, or no probe yet) and healthy are not.
func unhealthy(t *types.Container) bool {
	return t.DesiredState == types.ContainerRunning && t.ActualState == types.ContainerRunning &&
		t.HealthStatus == types.HealthUnhealthy
}

// givenUp reports whether the managers failed t for its health: see giveUp.
func givenUp(t *types.Container) bool { return t.DesiredState == types.ContainerFailed }

// ended reports whether t's run is over as its restart policy sees it: it
// finished, or it was given up as unhealthy (its container may still be
// stopping; it holds its node until it has).
func ended(t *types.Container) bool { return finished(t) || givenUp(t) }

// failed reports whether t ended in failure, as on-failure means it.
func failed(t *types.Container) bool {
	return t.ActualState == types.ContainerFailed || givenUp(t)
}

func (rc *run) service(svc *types.Service) {
	var current []*types.Container
	history := map[string][]*types.Container{} // slot key -> retired tasks
	for _, t := range rc.tasks[svc.ID] {
		if t.DesiredState == types.ContainerShutdown {
			history[slotKey(svc, t)] = append(history[slotKey(svc, t)], t)
			continue
		}
		current = append(current, t)
	}

	// Decide, task by task, what stays in its slot.
	occupied := map[string]*types.Container{}
	// The tasks whose slots need a new task, with its attempt number,
	// taken before retire changes their desired state.
	type replacement struct {
		old     *types.Container
		attempt int
	}
	var replace []replacement
	var stale []*types.Container // running an old spec
	for _, t := range current {
		key := slotKey(svc, t)
		if svc.Mode == types.ModeReplicated && (t.Slot < 1 || t.Slot > svc.Replicas) || occupied[key] != nil {
			rc.retire(t) // scaled down, or a duplicate
			continue
		}
		// The health a down node last reported is stale: what happens
		// to its tasks is the node's rules' to decide.
		if n := rc.nodes[t.NodeID]; unhealthy(t) && n != nil && n.Status != types.NodeDown {
			t = rc.giveUp(t)
		}
		switch stay, again := rc.keep(svc, t); {
		case stay && !ended(t) && outdated(svc, t):
			stale = append(stale, t)
			occupied[key] = t
		case stay:
			occupied[key] = t
		case again:
			replace = append(replace, replacement{old: t, attempt: attemptAfter(t)})
			rc.retire(t)
		default:
			rc.retire(t)
		}
	}

	// A rolling update: replace outdated tasks while fewer than the
	// update's parallelism of up-to-date ones are still starting.
	for _, t := range rc.updateBatch(svc, current, stale) {
		delete(occupied, slotKey(svc, t))
		replace = append(replace, replacement{old: t, attempt: 0})
		rc.retire(t)
	}

	var fresh []*types.Container
	for _, r := range replace {
		old := r.old
		if _, taken := occupied[slotKey(svc, old)]; taken {
			continue
		}
		// A replicated task's replacement goes wherever the scheduler
		// says (a local volume leads it back to its node); a global one
		// stays on its node, if that still takes tasks.
		node := ""
		if svc.Mode == types.ModeGlobal {
			if !rc.globalNode(svc, rc.nodes[old.NodeID]) {
				continue
			}
			node = old.NodeID
		}
		t := rc.newTask(svc, old.Slot, node, r.attempt)
		occupied[slotKey(svc, t)] = t
		fresh = append(fresh, t)
	}
	switch svc.Mode {
	case types.ModeReplicated:
		for slot := 1; slot <= svc.Replicas; slot++ {
			if occupied[fmt.Sprint(slot)] == nil {
				t := rc.newTask(svc, slot, "", 0)
				occupied[fmt.Sprint(slot)] = t
				fresh = append(fresh, t)
			}
		}
	case types.ModeGlobal:
		for _, id := range rc.nodeIDs {
			if occupied[id] == nil && rc.globalNode(svc, rc.nodes[id]) {
				t := rc.newTask(svc, 0, id, 0)
				occupied[id] = t
				fresh = append(fresh, t)
			}
		}
	}
	rc.place(svc, current, fresh)
	rc.trim(history)
}

// keep decides whether t stays in its slot; if not, whether the slot gets
// a new task.
func (rc *run) keep(svc *types.Service, t *types.Container) (stay, replace bool) {
	if t.NodeID != "" {
		n := rc.nodes[t.NodeID]
		switch {
		case n == nil:
			return false, true // the node was removed
		case n.Status == types.NodeDown && !ended(t):
			if svc.Mode == types.ModeGlobal || rc.pinned(t) {
				return true, false // bound to its node: wait for it
			}
			return false, true
		case n.Availability == types.NodeDrain && !ended(t):
			return false, true
		}
	}
	if !ended(t) {
		return true, false
	}
	if !restarts(svc.RestartPolicy, t) {
		return true, false // done for good: the slot stays as it ended
	}
	delay := time.Duration(0)
	if p := svc.RestartPolicy; p != nil {
		delay = p.Delay
	}
	if due := t.FinishedAt.Add(delay); rc.now.Before(due) {
		if rc.wake.IsZero() || due.Before(rc.wake) {
			rc.wake = due
		}
		return true, false
	}
	return false, true
}

// updateBatch picks the outdated tasks of svc to replace in this pass. An
// update replaces UpdateConfig.Parallelism tasks at a time (1 without an
// UpdateConfig; 0 means all at once, as in Swarm), counting the up-to-date
// tasks that have not reached running yet, and waits UpdateConfig.Delay
// after an up-to-date task started before it replaces more. A task not yet
// placed is replaced at once: it runs nowhere.
func (rc *run) updateBatch(svc *types.Service, current, stale []*types.Container) []*types.Container {
	if len(stale) == 0 {
		return nil
	}
	parallel, delay := 1, time.Duration(0)
	if u := svc.UpdateConfig; u != nil {
		parallel, delay = u.Parallelism, u.Delay
	}
	if parallel == 0 {
		parallel = len(stale)
	}
	var batch []*types.Container
	budget := parallel
	for _, t := range current {
		if outdated(svc, t) || ended(t) {
			continue
		}
		if t.ActualState != types.ContainerRunning {
			budget--
			continue
		}
		if due := t.StartedAt.Add(delay); delay > 0 && rc.now.Before(due) {
			budget = 0
			if rc.wake.IsZero() || due.Before(rc.wake) {
				rc.wake = due
			}
		}
	}
	for _, t := range stale {
		switch {
		case t.NodeID == "":
			batch = append(batch, t)
		case budget > 0:
			batch = append(batch, t)
			budget--
		}
	}
	return batch
}

// outdated reports whether t was made from another spec than svc's: what
// a task copies from its service differs, or ForceUpdate was raised. A
// secret's new version alone does not make a task outdated: a new task
// gets it, and `service update --force-recreate` makes them.
func outdated(svc *types.Service, t *types.Container) bool {
	return t.ForceUpdate != svc.ForceUpdate ||
		t.Image != svc.Image ||
		!slices.Equal(t.Command, svc.Command) ||
		!slices.Equal(t.Args, svc.Args) ||
		t.WorkingDir != svc.WorkingDir ||
		t.User != svc.User ||
		!slices.Equal(t.Env, svc.Env) ||
		!slices.Equal(t.Secrets, svc.Secrets) ||
		!sameItems(t.Ports, svc.Ports) ||
		!sameItems(t.Mounts, svc.Volumes) ||
		!samePtr(t.HealthCheck, svc.HealthCheck) ||
		!samePtr(t.RestartPolicy, svc.RestartPolicy) ||
		!samePtr(t.Resources, svc.Resources) ||
		t.StopTimeout != svc.StopTimeout
}

// samePtr compares what two pointers point at (nil only equals nil).
func samePtr[T any](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(*a, *b)
}

// sameItems compares two slices of pointers element by element, an empty
// slice equal to a nil one.
func sameItems[T any](a, b []*T) bool {
	return slices.EqualFunc(a, b, samePtr[T])
}

// restarts reports whether the policy restarts a task that ended like t.
// Without a policy a task is always restarted, as in Swarm.
func restarts(p *types.RestartPolicy, t *types.Container) bool {
	if p == nil {
		return true
	}
	if p.MaxAttempts > 0 && t.Attempt >= p.MaxAttempts {
		return false
	}
	switch p.Condition {
	case types.RestartNone:
		return false
	case types.RestartOnFailure:
		return failed(t)
	}
	return true
}

// giveUp fails t, a running task whose health check fails, as Swarm does:
// from here on it is a failed task, and keep restarts it (or not) on the
// path every failed task takes: condition, MaxAttempts, then Delay counted
// from FinishedAt. FinishedAt is set to now, when it failed; once the
// worker reports its container stopped, the report's time replaces it.
//
// Its desired state becomes failed, where Swarm records shutdown. Both make
// the agent stop the container, but here a task meant to be shut down is
// history: the next pass, deciding from the state alone, would fill its
// slot at once with a new task of attempt 0, ignoring Delay, condition none
// and MaxAttempts. A failed task keeps its slot, as a task that exited
// does, until it is replaced (then it is shut down) or for good (condition
// none, or no attempts left: stopped and not replaced, as in Swarm).
func (rc *run) giveUp(t *types.Container) *types.Container {
	c := rc.changed(t)
	c.DesiredState = types.ContainerFailed
	c.FinishedAt = rc.now
	return c
}

// attemptAfter is the attempt number of the task that replaces old: one
// more if old ended, the same if it was taken from a lost or drained node.
func attemptAfter(old *types.Container) int {
	if ended(old) {
		return old.Attempt + 1
	}
	return old.Attempt
}

// pinned reports whether t mounts a local volume that lives on t's node.
func (rc *run) pinned(t *types.Container) bool {
	for _, m := range t.Mounts {
		if v := rc.byName[m.Source]; m != nil && v != nil && v.Driver == "local" && v.NodeID == t.NodeID {
			return true
		}
	}
	return false
}

// globalNode reports whether a global service runs a task on n.
func (rc *run) globalNode(svc *types.Service, n *types.Node) bool {
	if n == nil || n.Status != types.NodeReady || n.Availability != types.NodeActive {
		return false
	}
	for _, expr := range svc.Constraints {
		c, err := types.ParseConstraint(expr)
		if err != nil || !c.Matches(n) {
			return false
		}
	}
	return true
}

func slotKey(svc *types.Service, t *types.Container) string {
	if svc.Mode == types.ModeGlobal {
		return t.NodeID
	}
	return fmt.Sprint(t.Slot)
}

// retire sets t's desired state to shutdown; its node's agent stops it. A
// task that was never placed is simply deleted.
func (rc *run) retire(t *types.Container) {
	if t.NodeID == "" {
		rc.deletes = append(rc.deletes, t.ID)
		return
	}
	c := rc.changed(t)
	c.DesiredState = types.ContainerShutdown
}

// changed returns the copy of t that goes into the plan.
func (rc *run) changed(t *types.Container) *types.Container {
	if c, ok := rc.upsert[t.ID]; ok {
		return c
	}
	c := *t
	rc.upsert[t.ID] = &c
	return &c
}

func (rc *run) newTask(svc *types.Service, slot int, nodeID string, attempt int) *types.Container {
	t := &types.Container{
		ID:            fmt.Sprintf("%s.%d.%016x", svc.Name, slot, rc.rand.Uint64()),
		ServiceID:     svc.ID,
		ServiceName:   svc.Name,
		NodeID:        nodeID,
		DesiredState:  types.ContainerRunning,
		ActualState:   types.ContainerPending,
		Image:         svc.Image,
		Command:       slices.Clone(svc.Command),
		Args:          slices.Clone(svc.Args),
		WorkingDir:    svc.WorkingDir,
		User:          svc.User,
		Env:           slices.Clone(svc.Env),
		Ports:         svc.Ports,
		Mounts:        svc.Volumes,
		Secrets:       slices.Clone(svc.Secrets),
		ForceUpdate:   svc.ForceUpdate,
		HealthCheck:   svc.HealthCheck,
		RestartPolicy: svc.RestartPolicy,
		Resources:     svc.Resources,
		StopTimeout:   svc.StopTimeout,
		CreatedAt:     rc.now,
		Slot:          slot,
		Attempt:       attempt,
	}
	for _, id := range svc.Secrets {
		if v := rc.secrets[id]; v > 1 {
			if t.SecretVersions == nil {
				t.SecretVersions = map[string]int{}
			}
			t.SecretVersions[id] = v
		}
	}
	if svc.Mode == types.ModeGlobal {
		t.ID = fmt.Sprintf("%s.%s.%016x", svc.Name, nodeID, rc.rand.Uint64())
	}
	rc.upsert[t.ID] = t
	return t
}

// place asks the scheduler for a node for every unplaced task of svc, and
// records the reason on those it cannot place.
func (rc *run) place(svc *types.Service, current, fresh []*types.Container) {
	todo := map[string]*types.Container{}
	var order []*types.Container
	for _, t := range current {
		if t.NodeID == "" && !finished(t) && !rc.deleted(t.ID) {
			todo[t.ID] = t
			order = append(order, t)
		}
	}
	isFresh := map[string]bool{}
	for _, t := range fresh {
		todo[t.ID] = t
		isFresh[t.ID] = true
		order = append(order, t)
	}
	if len(order) == 0 {
		return
	}
	cl := scheduler.Cluster{Nodes: rc.sortedNodes(), Tasks: rc.holding, Volumes: rc.volumes}
	for _, p := range scheduler.Place(cl, svc, order) {
		t := todo[p.TaskID]
		switch {
		case p.NodeID == "" && isFresh[t.ID] && t.NodeID != "":
			// A new global task that does not fit its node is not
			// created; the next reconciliation tries again.
			delete(rc.upsert, t.ID)
		case p.NodeID == "":
			if t.Error != p.Reason {
				rc.changed(t).Error = p.Reason
			}
		default:
			c := rc.changed(t)
			c.NodeID, c.Error = p.NodeID, ""
			rc.holding = append(rc.holding, c)
			for _, v := range p.PinVolumes {
				rc.pin(v)
			}
		}
	}
}

func (rc *run) deleted(id string) bool { return slices.Contains(rc.deletes, id) }

func (rc *run) pin(v *types.Volume) {
	rc.pins = append(rc.pins, v)
	if old := rc.byName[v.Name]; old != nil {
		rc.volumes = slices.DeleteFunc(rc.volumes, func(x *types.Volume) bool { return x == old })
	}
	rc.volumes = append(rc.volumes, v)
	rc.byName[v.Name] = v
}

// trim deletes the oldest finished tasks beyond HistoryLimit in each slot.
func (rc *run) trim(history map[string][]*types.Container) {
	for _, key := range sortedKeys(history) {
		var done []*types.Container
		for _, t := range history[key] {
			if finished(t) || t.NodeID == "" {
				done = append(done, t)
			}
		}
		slices.SortStableFunc(done, func(a, b *types.Container) int { return a.CreatedAt.Compare(b.CreatedAt) })
		for len(done) > HistoryLimit {
			rc.deletes = append(rc.deletes, done[0].ID)
			done = done[1:]
		}
	}
}

// orphans deletes tasks whose service is gone.
func (rc *run) orphans() {
	for _, sid := range sortedKeys(rc.tasks) {
		if !rc.known[sid] {
			for _, t := range rc.tasks[sid] {
				rc.deletes = append(rc.deletes, t.ID)
			}
		}
	}
}

func (rc *run) sortedNodes() []*types.Node {
	out := make([]*types.Node, 0, len(rc.nodeIDs))
	for _, id := range rc.nodeIDs {
		out = append(out, rc.nodes[id])
	}
	return out
}

func (rc *run) result() Result {
	res := Result{Wake: rc.wake}
	if len(rc.upsert) == 0 && len(rc.deletes) == 0 && len(rc.pins) == 0 {
		return res
	}
	p := &fsm.PlanTasks{Pin: rc.pins, Delete: rc.deletes}
	for _, id := range sortedKeys(rc.upsert) {
		p.Upsert = append(p.Upsert, rc.upsert[id])
	}
	res.Plan = p
	return res
}

// Describe summarises a plan for logs and traces.
func Describe(p *fsm.PlanTasks) string {
	if p == nil {
		return "no change"
	}
	var parts []string
	for _, t := range p.Upsert {
		parts = append(parts, fmt.Sprintf("%s desired=%s node=%q", t.ID, t.DesiredState, t.NodeID))
	}
	for _, id := range p.Delete {
		parts = append(parts, "delete "+id)
	}
	for _, v := range p.Pin {
		parts = append(parts, fmt.Sprintf("pin %s to %s", v.Name, v.NodeID))
	}
	return strings.Join(parts, "; ")
}

func sortedByID[T types.Record](rs []T) []T {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(a.RecordID(), b.RecordID()) })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Snapshot reads the cluster a reconciliation looks at from a Store view.
func Snapshot(r state.Reader) (Cluster, error) {
	var c Cluster
	var err error
	if c.Services, err = r.ListServices(); err != nil {
		return c, err
	}
	if c.Tasks, err = r.ListContainers(); err != nil {
		return c, err
	}
	if c.Nodes, err = r.ListNodes(); err != nil {
		return c, err
	}
	if c.Volumes, err = r.ListVolumes(); err != nil {
		return c, err
	}
	// Only the secrets services use: a record holds its sealed values (up
	// to 1 MiB each, older versions too), not worth decoding for nothing.
	c.SecretVersions = map[string]int{}
	for _, svc := range c.Services {
		for _, id := range svc.Secrets {
			if _, done := c.SecretVersions[id]; done {
				continue
			}
			s, err := r.GetSecret(id)
			if errors.Is(err, state.ErrNotFound) {
				continue
			}
			if err != nil {
				return c, err
			}
			c.SecretVersions[id] = s.CurrentVersion()
		}
	}
	return c, nil
}
