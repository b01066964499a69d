package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/secrets"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// simClusterID is the cluster ID the run's data key is wrapped for.
const simClusterID = "sim-cluster"

// secretBook is the simulator's side of secrets: the run's keyring, which
// seals the values the steps make and opens what the leader delivers, as
// every manager of a real cluster derives the same one; and the plaintext
// of every version it made, which the checks compare what nodes hold with.
//
// Its randomness (the keys, the values, the nonces) comes from a ChaCha8
// stream of its own, seeded from the run's seed: a run replays bit for bit,
// and scenarios without secrets draw exactly what they drew before.
type secretBook struct {
	keys *secrets.Keyring
	rand *rand.ChaCha8
	// live are the secrets the steps created and no delete has removed
	// yet, by name: the record as last submitted.
	live map[string]*types.Secret
	made map[string]int // incarnations so far, by name
	// names and values are kept for every secret ever made, by ID.
	names  map[string]string
	values map[string]map[int][]byte
}

func newSecretBook(seed uint64) *secretBook {
	h := sha256.New()
	h.Write([]byte("warren sim secrets"))
	_ = binary.Write(h, binary.LittleEndian, seed)
	src := rand.NewChaCha8([32]byte(h.Sum(nil)))
	kek := make([]byte, 32)
	_, _ = src.Read(kek)
	wrapped, err := secrets.NewDataKey(kek, simClusterID, src)
	if err != nil {
		panic(fmt.Sprintf("sim: make the data key: %v", err))
	}
	keys, err := secrets.Unwrap(kek, simClusterID, wrapped)
	if err != nil {
		panic(fmt.Sprintf("sim: unwrap the data key: %v", err))
	}
	return &secretBook{
		keys: keys, rand: src,
		live: map[string]*types.Secret{}, made: map[string]int{},
		names: map[string]string{}, values: map[string]map[int][]byte{},
	}
}

// open is the leader's dispatcher.Opener.
func (b *secretBook) open(sealedFor string, sealed []byte) ([]byte, error) {
	return b.keys.Open(sealedFor, sealed)
}

// seal draws version v's value of secret id and seals it.
func (b *secretBook) seal(id, name string, v int) []byte {
	plain := fmt.Appendf(nil, "%s v%d %016x", name, v, b.rand.Uint64())
	sealed, err := b.keys.Seal(types.SealedFor(id, v), plain, b.rand)
	if err != nil {
		panic(fmt.Sprintf("sim: seal secret %s: %v", name, err))
	}
	if b.values[id] == nil {
		b.values[id] = map[int][]byte{}
	}
	b.values[id][v] = plain
	return sealed
}

// value is the plaintext of version v of secret id, if the book made it.
func (b *secretBook) value(id string, v int) ([]byte, bool) {
	p, ok := b.values[id][max(v, 1)]
	return p, ok
}

// create makes a new secret: "sec-NAME", then "sec-NAME.2" and so on for
// one created again after a delete, so that an ID always means one secret.
func (b *secretBook) create(name string, now time.Time) (fsm.Command, error) {
	if _, ok := b.live[name]; ok {
		return nil, fmt.Errorf("secret %s exists: delete it before creating it again", name)
	}
	b.made[name]++
	id := "sec-" + name
	if n := b.made[name]; n > 1 {
		id = fmt.Sprintf("sec-%s.%d", name, n)
	}
	b.names[id] = name
	s := &types.Secret{ID: id, Name: name, CreatedAt: now, UpdatedAt: now}
	s.Data = b.seal(id, name, 1)
	b.live[name] = s
	return &fsm.CreateSecret{Secret: types.Clone(s)}, nil
}

// update makes the next version of a secret. Versions are numbered by the
// book, not read from a leader, so each number has one value whatever the
// order writes commit in; every older version goes along as Previous, and
// the fsm drops those no task uses.
func (b *secretBook) update(name string, now time.Time) (fsm.Command, error) {
	s, ok := b.live[name]
	if !ok {
		return nil, fmt.Errorf("update-secret: no secret %q: create it first", name)
	}
	v := s.CurrentVersion()
	s.Previous = append(s.Previous, &types.SecretVersion{Version: v, Data: s.Data, CreatedAt: s.UpdatedAt})
	s.Version, s.UpdatedAt = v+1, now
	s.Data = b.seal(s.ID, name, v+1)
	return &fsm.UpdateSecret{Secret: types.Clone(s)}, nil
}

// remove deletes a secret; the name is free for a create once the delete
// commits (deleted).
func (b *secretBook) remove(name string, force bool) (fsm.Command, error) {
	s, ok := b.live[name]
	if !ok {
		return nil, fmt.Errorf("delete-secret: no secret %q", name)
	}
	return &fsm.DeleteSecret{ID: s.ID, Force: force}, nil
}

// deleted learns that secret id's delete committed.
func (b *secretBook) deleted(id string) {
	if s, ok := b.live[b.names[id]]; ok && s.ID == id {
		delete(b.live, s.Name)
	}
}

// ids resolves a service step's secret names to the secrets' IDs.
func (b *secretBook) ids(names []string) ([]string, error) {
	var ids []string
	for _, n := range names {
		s, ok := b.live[n]
		if !ok {
			return nil, fmt.Errorf("service uses secret %q, which no earlier step created (or it was deleted)", n)
		}
		ids = append(ids, s.ID)
	}
	return ids, nil
}

// deliver is the leader's answer to a node's heartbeat: its assignments
// with the secrets they carry, decided by the core (dispatcher.WithSecrets),
// unless a broken variant spoils them.
func (c *Cluster) deliver(m *manager, as []agent.Assignment) ([]agent.Assignment, error) {
	if c.cfg.Broken == BrokenSecretsNone {
		return as, nil
	}
	out, err := dispatcher.WithSecrets(m.store, as, c.secrets.open)
	if err != nil {
		return nil, err
	}
	switch c.cfg.Broken {
	case BrokenSecretsLatest:
		// Every secret at its newest version, whatever the task was made
		// with.
		out = slices.Clone(out)
		for i, a := range out {
			if !meantToRunWithSecrets(a.Task) {
				continue
			}
			values := map[string][]byte{}
			for _, id := range a.Task.Secrets {
				if s, err := m.store.GetSecret(id); err == nil {
					plain, err := c.secrets.open(types.SealedFor(s.ID, s.CurrentVersion()), s.Data)
					if err != nil {
						return nil, err
					}
					values[s.Name] = plain
				}
			}
			out[i].Secrets = values
		}
	case BrokenSecretsEveryNode:
		// Every secret of the cluster to every task it starts, used or
		// not: the values reach nodes no task of which uses them.
		all, err := m.store.ListSecrets()
		if err != nil {
			return nil, err
		}
		out = slices.Clone(out)
		for i, a := range out {
			if a.Task.DesiredState != types.ContainerRunning {
				continue
			}
			values := maps.Clone(a.Secrets)
			if values == nil {
				values = map[string][]byte{}
			}
			for _, s := range all {
				if _, ok := c.secrets.names[s.ID]; !ok {
					continue // the client's load: never meant for a task
				}
				if _, has := values[s.Name]; !has {
					plain, err := c.secrets.open(types.SealedFor(s.ID, s.CurrentVersion()), s.Data)
					if err != nil {
						return nil, err
					}
					values[s.Name] = plain
				}
			}
			out[i].Secrets = values
		}
	}
	return out, nil
}

func meantToRunWithSecrets(t *types.Container) bool {
	return t.DesiredState == types.ContainerRunning && len(t.Secrets) > 0
}

// lingeringRuntime is the broken variant of a node's runtime that keeps
// the secret values of its tasks after they stop and are removed: a tmpfs
// never unmounted.
type lingeringRuntime struct {
	orchestrator.Runtime
	held map[string]map[string][]byte // by task ID
}

func (r *lingeringRuntime) Start(task *types.Container, s map[string][]byte) error {
	if err := r.Runtime.Start(task, s); err != nil {
		return err
	}
	if len(s) > 0 {
		r.held[task.ID] = orchestrator.CloneSecrets(s)
	}
	return nil
}

// heldSecrets is every secret value the worker's runtime holds, by task ID
// and secret name.
func (w *worker) heldSecrets() map[string]map[string][]byte {
	if w.linger != nil {
		return w.linger.held
	}
	held := map[string]map[string][]byte{}
	cs, _ := w.rt.Containers()
	for _, ct := range cs {
		if s := w.rt.Secrets(ct.TaskID); len(s) > 0 {
			held[ct.TaskID] = s
		}
	}
	return held
}

// secretsOf is what the worker's runtime holds for one task.
func (w *worker) secretsOf(taskID string) map[string][]byte {
	if w.linger != nil {
		return w.linger.held[taskID]
	}
	return w.rt.Secrets(taskID)
}

// checkSecrets checks what a worker's runtime holds after its agent acted
// (a node gets secret values only when its agent starts a container): a
// value only for a container that is starting, running or stopping, of a
// task assigned to this node that uses the secret, and the value of the
// version the task was made with. A stopped or removed task holds nothing.
func (c *Cluster) checkSecrets(w *worker) {
	const invariant = "secrets only on nodes running a task that uses them"
	cs, err := w.rt.Containers()
	if err != nil {
		panic(err)
	}
	states := map[string]types.ContainerState{}
	for _, ct := range cs {
		states[ct.TaskID] = ct.State
	}
	held := w.heldSecrets()
	for _, taskID := range slices.Sorted(maps.Keys(held)) {
		values := held[taskID]
		if len(values) == 0 {
			continue
		}
		names := slices.Sorted(maps.Keys(values))
		st, listed := states[taskID]
		switch {
		case !listed:
			c.fail(invariant, "%s holds secrets %s of task %s, whose container was removed", w.id, strings.Join(names, ", "), taskID)
			return
		case st != types.ContainerPending && st != types.ContainerRunning:
			c.fail(invariant, "%s holds secrets %s of task %s, whose container is %s", w.id, strings.Join(names, ", "), taskID, st)
			return
		}
		t := c.tasks[taskID]
		if t == nil || t.node != w.id {
			where := "no node"
			if t != nil {
				where = t.node
			}
			c.fail(invariant, "%s holds secrets %s for task %s, which is assigned to %s", w.id, strings.Join(names, ", "), taskID, where)
			return
		}
		for _, name := range names {
			id := ""
			for _, sid := range t.secrets {
				if c.secrets.names[sid] == name {
					id = sid
				}
			}
			if id == "" {
				c.fail(invariant, "%s holds secret %s for task %s, which does not use it", w.id, name, taskID)
				return
			}
			v := max(t.versions[id], 1)
			if want, ok := c.secrets.value(id, v); !ok || !bytes.Equal(values[name], want) {
				c.fail(invariant, "%s holds for task %s a value of secret %s that is not version %d's, which the task was made with%s",
					w.id, taskID, name, v, c.secrets.whichVersion(id, values[name]))
				return
			}
			c.eventOnce(w.id, "holds secret %s (%s) v%d", name, id, v)
		}
	}
}

// whichVersion says which version of secret id value is, for a failure.
func (b *secretBook) whichVersion(id string, value []byte) string {
	for _, v := range slices.Sorted(maps.Keys(b.values[id])) {
		if bytes.Equal(b.values[id][v], value) {
			return fmt.Sprintf(" (it is version %d's)", v)
		}
	}
	return ""
}

// missingSecret is the liveness side: a task running (by the managers'
// record) holds every secret it uses that still exists, at its version.
func (c *Cluster) missingSecret(l *manager, w *worker, t *types.Container) error {
	if len(t.Secrets) == 0 {
		return nil
	}
	held := w.secretsOf(t.ID)
	for _, id := range t.Secrets {
		s, err := l.store.GetSecret(id)
		if errors.Is(err, state.ErrNotFound) {
			continue // deleted with --force before the task started, or since
		}
		if err != nil {
			return err
		}
		v := t.SecretVersionOf(id)
		if want, _ := c.secrets.value(id, v); !bytes.Equal(held[s.Name], want) {
			return fmt.Errorf("service %s: task %s on %s runs without version %d of secret %s, which it uses", t.ServiceName, t.ID, t.NodeID, v, s.Name)
		}
	}
	return nil
}
