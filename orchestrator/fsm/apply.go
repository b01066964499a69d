package fsm

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Apply refuses commands with these errors (wrapped), and with the Store's
// (state.ErrNotFound, state.ErrNameTaken, types.ErrInvalid).
var (
	// ErrExists: a create names an ID that is taken.
	ErrExists = errors.New("fsm: already exists")
	// ErrInUse: a delete of something a service still uses, or of a node
	// a volume is pinned to.
	ErrInUse = errors.New("fsm: in use")
	// ErrConflict: a plan made on a state that has changed since, or that
	// would break an invariant (a task moving node, a local volume moving
	// node, a task placed away from its local volume, the cluster's ID
	// changing).
	ErrConflict = errors.New("fsm: conflict")
)

// Apply applies c to s in one transaction.
func Apply(s state.Store, c Command) error {
	return s.Update(func(tx state.Tx) error { return ApplyTx(tx, c) })
}

// ApplyBytes decodes a log entry and applies it to s.
func ApplyBytes(s state.Store, entry []byte) error {
	c, err := Decode(entry)
	if err != nil {
		return err
	}
	return Apply(s, c)
}

// ApplyTx applies c within tx; on error the caller must roll tx back.
func ApplyTx(tx state.Tx, c Command) error {
	switch c := c.(type) {
	case *CreateService:
		return create(tx, c.Service, tx.UpdateService)
	case *UpdateService:
		return update(tx, c.Service, tx.UpdateService)
	case *DeleteService:
		return deleteService(tx, c.ID)
	case *CreateVolume:
		return create(tx, c.Volume, tx.UpdateVolume)
	case *UpdateVolume:
		return updateVolume(tx, c.Volume)
	case *DeleteVolume:
		return deleteVolume(tx, c.ID, c.Force)
	case *CreateSecret:
		return create(tx, c.Secret, tx.UpdateSecret)
	case *UpdateSecret:
		return updateSecret(tx, c.Secret, c.IfVersion)
	case *DeleteSecret:
		return deleteSecret(tx, c.ID, c.Force)
	case *CreateNetwork:
		return create(tx, c.Network, tx.UpdateNetwork)
	case *UpdateNetwork:
		return update(tx, c.Network, tx.UpdateNetwork)
	case *DeleteNetwork:
		return deleteUnused(tx, c.ID, tx.GetNetwork, tx.DeleteNetwork, func(s *types.Service) []string { return s.Networks })
	case *RegisterNode:
		if c.Node == nil {
			return missing(c)
		}
		return tx.UpdateNode(c.Node)
	case *UpdateNode:
		return update(tx, c.Node, tx.UpdateNode)
	case *SetNodeStatus:
		n, err := tx.GetNode(c.NodeID)
		if err != nil {
			return err
		}
		n.Status, n.LastHeartbeat = c.Status, c.LastHeartbeat
		return tx.UpdateNode(n)
	case *ReportTasks:
		return reportTasks(tx, c.Statuses)
	case *PlanTasks:
		return planTasks(tx, c)
	case *SetCluster:
		return setCluster(tx, c)
	case *DeleteNode:
		return deleteNode(tx, c.ID)
	case *ReportVolumes:
		return reportVolumes(tx, c)
	case *Batch:
		for i, sub := range c.Commands {
			if _, nested := sub.(*Batch); nested {
				return fmt.Errorf("%w: batch command %d is a batch", ErrFormat, i)
			}
			if err := ApplyTx(tx, sub); err != nil {
				return fmt.Errorf("batch command %d (%s): %w", i, kindOf(sub), err)
			}
		}
		return nil
	case nil:
		return fmt.Errorf("%w: nil command", ErrFormat)
	}
	return fmt.Errorf("%w: %T is not a command this binary applies", ErrFormat, c)
}

func missing(c Command) error {
	return fmt.Errorf("%w: %s without its record", types.ErrInvalid, c.Kind())
}

func create[P interface {
	comparable
	types.Record
}](tx state.Tx, r P, put func(P) error) error {
	var zero P
	if r == zero {
		return fmt.Errorf("%w: create without a record", types.ErrInvalid)
	}
	// Has reads no more than the key: the record need not be decoded.
	if ok, err := tx.Has(r.Kind(), r.RecordID()); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("%w: %s %s", ErrExists, r.Kind(), r.RecordID())
	}
	return put(r)
}

func update[P interface {
	comparable
	types.Record
}](tx state.Tx, r P, put func(P) error) error {
	var zero P
	if r == zero {
		return fmt.Errorf("%w: update without a record", types.ErrInvalid)
	}
	if ok, err := tx.Has(r.Kind(), r.RecordID()); err != nil {
		return err
	} else if !ok {
		return &state.NotFoundError{Kind: r.Kind(), Key: r.RecordID()}
	}
	return put(r)
}

func deleteService(tx state.Tx, id string) error {
	if _, err := tx.GetService(id); err != nil {
		return err
	}
	tasks, err := tx.ListContainersByService(id)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if err := tx.DeleteContainer(t.ID); err != nil {
			return err
		}
	}
	return tx.DeleteService(id)
}

// setCluster stores the cluster's record. The store refuses another ID
// too, but as invalid input; here it is a conflict with the cluster that
// exists, which no retry of the same command can resolve.
func setCluster(tx state.Tx, c *SetCluster) error {
	if c.Cluster == nil {
		return missing(c)
	}
	old, err := tx.GetCluster()
	switch {
	case err == nil && old.ID != c.Cluster.ID:
		return fmt.Errorf("%w: the cluster's ID cannot change: this is cluster %s, not %q", ErrConflict, old.ID, c.Cluster.ID)
	case err != nil && !errors.Is(err, state.ErrNotFound):
		return err
	}
	return tx.UpdateCluster(c.Cluster)
}

// deleteNode removes a node and its tasks. Tasks that ended go too: their
// history names a node that no longer exists.
func deleteNode(tx state.Tx, id string) error {
	if _, err := tx.GetNode(id); err != nil {
		return err
	}
	vols, err := tx.ListVolumes()
	if err != nil {
		return err
	}
	var pinned []string
	for _, v := range vols {
		if v.NodeID == id {
			pinned = append(pinned, v.Name)
		}
	}
	switch len(pinned) {
	case 0:
	case 1:
		return fmt.Errorf("%w: node %s holds volume %s, whose data lives only there: delete the volume first",
			ErrInUse, id, pinned[0])
	default:
		return fmt.Errorf("%w: node %s holds volumes %s, whose data lives only there: delete the volumes first",
			ErrInUse, id, strings.Join(pinned, ", "))
	}
	tasks, err := tx.ListContainersByNode(id)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if err := tx.DeleteContainer(t.ID); err != nil {
			return err
		}
	}
	return tx.DeleteNode(id)
}

func updateVolume(tx state.Tx, v *types.Volume) error {
	if v == nil {
		return fmt.Errorf("%w: update without a record", types.ErrInvalid)
	}
	old, err := tx.GetVolume(v.ID)
	if err != nil {
		return err
	}
	if old.Driver == "local" && old.NodeID != "" && v.NodeID != old.NodeID {
		return fmt.Errorf("%w: volume %s is a local volume on node %s: its data cannot move to %q", ErrConflict, old.Name, old.NodeID, v.NodeID)
	}
	return tx.UpdateVolume(v)
}

func kindOf(c Command) string {
	if c == nil {
		return "nil"
	}
	return c.Kind().String()
}

func deleteVolume(tx state.Tx, id string, force bool) error {
	v, err := tx.GetVolume(id)
	if err != nil {
		return err
	}
	mounts := func(s *types.Service) bool {
		return slices.ContainsFunc(s.Volumes, func(m *types.VolumeMount) bool { return m != nil && m.Source == v.Name })
	}
	users, err := servicesWhere(tx, mounts)
	if err != nil {
		return err
	}
	if len(users) > 0 && !force {
		return inUse("volume", v.Name, users)
	}
	if force {
		if err := stopUsers(tx, v.Name, mounts); err != nil {
			return err
		}
	}
	return tx.DeleteVolume(id)
}

func reportVolumes(tx state.Tx, c *ReportVolumes) error {
	for _, r := range c.Volumes {
		v, err := tx.GetVolume(r.ID)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if v.NodeID != c.NodeID || c.NodeID == "" {
			continue
		}
		if r.MountPath != "" {
			v.MountPath = r.MountPath
		}
		if !r.SizeAt.IsZero() {
			v.Size, v.SizeAt = r.Size, r.SizeAt
		}
		if err := tx.UpdateVolume(v); err != nil {
			return err
		}
	}
	return nil
}

// stopUsers scales the replicated services for which uses holds to 0
// replicas; a global one refuses.
func stopUsers(tx state.Tx, volume string, uses func(*types.Service) bool) error {
	all, err := tx.ListServices()
	if err != nil {
		return err
	}
	for _, s := range all {
		if !uses(s) {
			continue
		}
		if s.Mode == types.ModeGlobal {
			return fmt.Errorf("%w: volume %s is used by global service %s, which runs on every node and cannot be stopped: remove the service first",
				ErrInUse, volume, s.Name)
		}
		if s.Replicas == 0 {
			continue
		}
		s.Replicas = 0
		if err := tx.UpdateService(s); err != nil {
			return err
		}
	}
	return nil
}

func deleteSecret(tx state.Tx, id string, force bool) error {
	if !force {
		return deleteUnused(tx, id, tx.GetSecret, tx.DeleteSecret, func(s *types.Service) []string { return s.Secrets })
	}
	if _, err := tx.GetSecret(id); err != nil {
		return err
	}
	all, err := tx.ListServices()
	if err != nil {
		return err
	}
	for _, s := range all {
		if !slices.Contains(s.Secrets, id) {
			continue
		}
		s.Secrets = slices.DeleteFunc(s.Secrets, func(x string) bool { return x == id })
		if err := tx.UpdateService(s); err != nil {
			return err
		}
	}
	return tx.DeleteSecret(id)
}

// updateSecret replaces a secret, dropping the older versions no task
// that runs or is to run was made with.
func updateSecret(tx state.Tx, s *types.Secret, ifVersion int) error {
	if s == nil {
		return fmt.Errorf("%w: update without a record", types.ErrInvalid)
	}
	old, err := tx.GetSecret(s.ID)
	if err != nil {
		return err
	}
	if ifVersion > 0 && old.CurrentVersion() != ifVersion {
		return fmt.Errorf("%w: secret %s is at version %d, not %d: another write changed it meanwhile; try again",
			ErrConflict, old.Name, old.CurrentVersion(), ifVersion)
	}
	if len(s.Previous) > 0 {
		used, err := secretVersionsInUse(tx, map[string]bool{s.ID: true})
		if err != nil {
			return err
		}
		s = dropUnused(s, used[s.ID])
	}
	return tx.UpdateSecret(s)
}

// secretVersionsInUse returns, for each secret in ids, the versions the
// tasks meant to run were made with.
func secretVersionsInUse(tx state.Tx, ids map[string]bool) (map[string]map[int]bool, error) {
	tasks, err := tx.ListContainers()
	if err != nil {
		return nil, err
	}
	used := map[string]map[int]bool{}
	for _, t := range tasks {
		if t.DesiredState != types.ContainerRunning {
			continue
		}
		for _, id := range t.Secrets {
			if !ids[id] {
				continue
			}
			if used[id] == nil {
				used[id] = map[int]bool{}
			}
			used[id][t.SecretVersionOf(id)] = true
		}
	}
	return used, nil
}

// dropUnused returns s without the older versions not in used (s itself
// when it keeps them all).
func dropUnused(s *types.Secret, used map[int]bool) *types.Secret {
	keep := slices.DeleteFunc(slices.Clone(s.Previous), func(p *types.SecretVersion) bool { return !used[p.Version] })
	if len(keep) == len(s.Previous) {
		return s
	}
	c := *s
	c.Previous = keep
	if len(keep) == 0 {
		c.Previous = nil
	}
	return &c
}

// pruneSecrets drops the older versions of the secrets the tasks of a plan
// use that no task meant to run still uses.
func pruneSecrets(tx state.Tx, secrets *planSecrets, tasks []*types.Container) error {
	ids := map[string]bool{}
	for _, t := range tasks {
		for _, id := range t.Secrets {
			ids[id] = true
		}
	}
	var old []*types.Secret
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		s, err := secrets.get(id)
		if err != nil {
			return err
		}
		if s != nil && len(s.Previous) > 0 {
			old = append(old, s)
		}
	}
	if len(old) == 0 {
		return nil
	}
	used, err := secretVersionsInUse(tx, ids)
	if err != nil {
		return err
	}
	for _, s := range old {
		if c := dropUnused(s, used[s.ID]); c != s {
			if err := tx.UpdateSecret(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteUnused deletes a record (secret, network) that services refer to
// by ID, unless one does.
func deleteUnused[P types.Record](tx state.Tx, id string, get func(string) (P, error), del func(string) error, refs func(*types.Service) []string) error {
	r, err := get(id)
	if err != nil {
		return err
	}
	users, err := servicesWhere(tx, func(s *types.Service) bool { return slices.Contains(refs(s), id) })
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return inUse(string(r.Kind()), r.RecordName(), users)
	}
	return del(id)
}

func servicesWhere(tx state.Tx, pred func(*types.Service) bool) ([]string, error) {
	all, err := tx.ListServices()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range all {
		if pred(s) {
			names = append(names, s.Name)
		}
	}
	return names, nil
}

func inUse(kind, name string, services []string) error {
	slices.Sort(services)
	return fmt.Errorf("%w: %s %s is used by service %s: remove it from the service first, or delete the service",
		ErrInUse, kind, name, strings.Join(services, ", "))
}

// stateRank orders a task's actual states: reports never move a task
// backwards (a late "running" after "failed" is stale).
var stateRank = map[types.ContainerState]int{
	types.ContainerPending:  0,
	types.ContainerRunning:  1,
	types.ContainerComplete: 2,
	types.ContainerFailed:   2,
	types.ContainerShutdown: 2,
}

func reportTasks(tx state.Tx, statuses []TaskStatus) error {
	for _, st := range statuses {
		if _, known := stateRank[st.ActualState]; !known {
			return fmt.Errorf("%w: task %s reported in state %q: use pending, running, complete, failed or shutdown", types.ErrInvalid, st.TaskID, st.ActualState)
		}
	}
	for _, st := range statuses {
		t, err := tx.GetContainer(st.TaskID)
		if errors.Is(err, state.ErrNotFound) {
			continue // deleted meanwhile: the worker will stop it
		}
		if err != nil {
			return err
		}
		if t.NodeID != st.NodeID {
			continue // from a node the task is not assigned to
		}
		if stateRank[st.ActualState] < stateRank[t.ActualState] ||
			(stateRank[t.ActualState] == 2 && st.ActualState != t.ActualState) {
			continue // stale
		}
		t.ActualState, t.ContainerID, t.ExitCode, t.Error = st.ActualState, st.ContainerID, st.ExitCode, st.Error
		t.StartedAt, t.FinishedAt = st.StartedAt, st.FinishedAt
		if st.Health != "" {
			t.HealthStatus = st.Health
		}
		if err := tx.UpdateContainer(t); err != nil {
			return err
		}
	}
	return nil
}

func planTasks(tx state.Tx, p *PlanTasks) error {
	for _, v := range p.Pin {
		if err := pinVolume(tx, v); err != nil {
			return err
		}
	}
	for _, id := range p.Delete {
		if err := tx.DeleteContainer(id); err != nil && !errors.Is(err, state.ErrNotFound) {
			return err
		}
	}
	secrets := &planSecrets{tx: tx, got: map[string]*types.Secret{}}
	for _, t := range p.Upsert {
		if err := checkPlacement(tx, t); err != nil {
			return err
		}
		if err := keepSecretVersions(tx, secrets, t); err != nil {
			return err
		}
		if err := tx.UpdateContainer(t); err != nil {
			return err
		}
	}
	return pruneSecrets(tx, secrets, p.Upsert)
}

// planSecrets reads each secret a plan's tasks use once: a record holds
// its sealed values (up to 1 MiB each, older versions too), and a plan's
// tasks often share their secrets.
type planSecrets struct {
	tx  state.Tx
	got map[string]*types.Secret // nil: deleted
}

// get returns secret id, or nil if it was deleted.
func (p *planSecrets) get(id string) (*types.Secret, error) {
	if s, ok := p.got[id]; ok {
		return s, nil
	}
	s, err := p.tx.GetSecret(id)
	if errors.Is(err, state.ErrNotFound) {
		s, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	p.got[id] = s
	return s, nil
}

// keepSecretVersions gives a task of a plan that is new, and made with a
// secret version that was dropped since the plan was made (an update
// committed between the plan's snapshot and its commit, when no other
// task used the old version), the secret's current version: it has not
// started, and a version that is gone cannot be delivered.
func keepSecretVersions(tx state.Tx, secrets *planSecrets, t *types.Container) error {
	if len(t.Secrets) == 0 || t.DesiredState != types.ContainerRunning {
		return nil
	}
	if ok, err := tx.Has(types.KindContainer, t.ID); err != nil || ok {
		return err
	}
	for _, id := range t.Secrets {
		s, err := secrets.get(id)
		if err != nil {
			return err
		}
		if s == nil {
			continue
		}
		if _, ok := s.VersionData(t.SecretVersionOf(id)); ok {
			continue
		}
		t.SecretVersions = maps.Clone(t.SecretVersions)
		if t.SecretVersions == nil {
			t.SecretVersions = map[string]int{}
		}
		t.SecretVersions[id] = s.CurrentVersion()
	}
	return nil
}

// pinVolume creates a local volume on its node, or pins an existing one
// that had no node yet.
func pinVolume(tx state.Tx, v *types.Volume) error {
	if v == nil {
		return fmt.Errorf("%w: pin without a volume", types.ErrInvalid)
	}
	old, err := tx.GetVolumeByName(v.Name)
	if errors.Is(err, state.ErrNotFound) {
		return tx.UpdateVolume(v)
	}
	if err != nil {
		return err
	}
	if old.NodeID != "" && old.NodeID != v.NodeID {
		return fmt.Errorf("%w: volume %s is already on node %s, not %s", ErrConflict, v.Name, old.NodeID, v.NodeID)
	}
	old.NodeID = v.NodeID
	if old.MountPath == "" {
		old.MountPath = v.MountPath
	}
	return tx.UpdateVolume(old)
}

// checkPlacement refuses a task that would move node, or run away from a
// local volume it mounts: the invariants hold even if a plan was made on an
// old state or by a faulty scheduler.
func checkPlacement(tx state.Tx, t *types.Container) error {
	if t == nil {
		return fmt.Errorf("%w: plan with a nil task", types.ErrInvalid)
	}
	old, err := tx.GetContainer(t.ID)
	switch {
	case err == nil && old.NodeID != "" && old.NodeID != t.NodeID:
		return fmt.Errorf("%w: task %s is on node %s and cannot move to %q: replace it with a new task", ErrConflict, t.ID, old.NodeID, t.NodeID)
	case err != nil && !errors.Is(err, state.ErrNotFound):
		return err
	}
	if t.NodeID == "" {
		return nil
	}
	for _, m := range t.Mounts {
		if m == nil {
			continue
		}
		v, err := tx.GetVolumeByName(m.Source)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if v.Driver == "local" && v.NodeID != "" && v.NodeID != t.NodeID {
			return fmt.Errorf("%w: task %s mounts local volume %s on node %s, so it cannot run on %s", ErrConflict, t.ID, v.Name, v.NodeID, t.NodeID)
		}
	}
	return nil
}
