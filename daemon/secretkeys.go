package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/secrets"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// The keys that protect secrets, as a manager holds them: the KEK (derived
// from the cluster record, or, with autolock, the unlock key given to this
// manager), the unlock itself, and the rotation of the data key.
//
// Every sealing and every secret write through the API happen under m.mu
// on the leader (SealSecret, apiBackend.Apply), and a rotation takes m.mu
// for each of its steps: a secret written while the key changes is sealed
// again under the new key before it is stored, or refused if the key it
// was sealed under is gone, so no stored secret is ever left under a key
// the cluster record no longer holds.

// kek is the key that wraps the cluster's data keys: the unlock key this
// manager was given (unlock, nil if none) in an autolocked cluster, else
// the one derived from the cluster ID and salt.
func (m *manager) kek(c *types.Cluster, unlock []byte) ([]byte, error) {
	if c.Autolock {
		if unlock == nil {
			return nil, m.lockedError()
		}
		return unlock, nil
	}
	return secrets.DeriveKEK(c.ID, c.EncryptionSalt)
}

// keysOf is what a keyring unwrapped from c depends on: both wrapped keys
// (of fixed size, so joining them is unambiguous) and the salt.
func keysOf(c *types.Cluster) []byte {
	return slices.Concat(c.DataKey, c.PreviousDataKey, c.EncryptionSalt)
}

// lockedError is why a manager of an autolocked cluster that has not been
// given the unlock key seals and opens no secret.
func (m *manager) lockedError() error {
	who := "manager " + m.id.NodeID
	if m.node != nil && m.node.IsLeader() {
		who += ", which leads,"
	}
	return fmt.Errorf("%w: run `warren cluster unlock --manager %s` with the unlock key `warren cluster init --autolock` printed: %s has not been unlocked since it started, so it seals and opens no secret (unlock every manager: any of them may come to lead)",
		api.ErrLocked, m.id.APIAddr, who)
}

// setUnlockKey makes this manager hold key (nil: none), as init does for
// the manager it starts.
func (m *manager) setUnlockKey(key []byte) {
	m.keysMu.Lock()
	defer m.keysMu.Unlock()
	m.unlockKey = bytes.Clone(key)
}

// warnIfLocked says in the log, as a manager starts, that it waits for
// `warren cluster unlock`.
func (m *manager) warnIfLocked() {
	c, err := m.node.Store().GetCluster()
	if err != nil || !c.Autolock {
		return
	}
	m.keysMu.Lock()
	locked := m.unlockKey == nil
	m.keysMu.Unlock()
	if locked {
		m.log.Warn("the cluster is autolocked and this manager is locked: it seals and opens no secret until `warren cluster unlock --manager " + m.id.APIAddr + "` gives it the unlock key")
	}
}

// autolock prepares an autolocked cluster's record at init: a new unlock
// key, which it returns, and the data key wrapped under it, so that an
// unlock can tell a wrong key from the right one. Nothing without
// cfg.Autolock.
func autolock(cfg Config, c *types.Cluster) ([]byte, error) {
	if !cfg.Autolock {
		return nil, nil
	}
	key, err := secrets.NewUnlockKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if c.DataKey, err = secrets.NewDataKey(key, c.ID, rand.Reader); err != nil {
		return nil, err
	}
	c.Autolock = true
	return key, nil
}

// showUnlockKey hands the unlock key init made to cfg.UnlockKey: the only
// time it leaves the manager's memory.
func showUnlockKey(cfg Config, key []byte) error {
	if key == nil {
		return nil
	}
	text, err := secrets.FormatUnlockKey(key)
	if err != nil {
		return err
	}
	cfg.UnlockKey(text)
	return nil
}

// errNoUnlockKeyOut refuses an autolocked init whose caller would not get
// the key: the cluster's secrets would be lost with the first restart.
var errNoUnlockKeyOut = errors.New("daemon: Config.Autolock needs Config.UnlockKey to hand the unlock key to, or it would be lost")

// Unlock implements api.Backend.
func (m *manager) Unlock(_ context.Context, key []byte) (*api.UnlockResult, error) {
	c, err := m.node.Store().GetCluster()
	if errors.Is(err, state.ErrNotFound) {
		return nil, fmt.Errorf("%w: manager %s has no cluster record yet (it is catching up with the leader): unlock it again in a moment",
			fsm.ErrConflict, m.id.NodeID)
	}
	if err != nil {
		return nil, err
	}
	if !c.Autolock {
		return nil, fmt.Errorf("%w: cluster %s is not autolocked: its managers derive the key that protects secrets themselves, so there is nothing to unlock",
			fsm.ErrConflict, c.ID)
	}
	if len(c.DataKey) == 0 {
		return nil, fmt.Errorf("%w: cluster %s is autolocked but its record holds no data key to check the unlock key against: restore it from a backup",
			fsm.ErrConflict, c.ID)
	}
	keys, err := secrets.UnwrapWithPrevious(key, c.ID, c.DataKey, c.PreviousDataKey)
	if errors.Is(err, secrets.ErrWrongKey) {
		return nil, fmt.Errorf("%w: that is not the unlock key of cluster %s (it does not open the cluster's data key): give the key `warren cluster init --autolock` printed for this cluster; manager %s stays as it was",
			api.ErrForbidden, c.ID, m.id.NodeID)
	}
	if err != nil {
		return nil, err
	}
	m.keysMu.Lock()
	already := m.unlockKey != nil
	m.unlockKey = bytes.Clone(key)
	m.keys, m.keysOf = keys, keysOf(c)
	m.keysMu.Unlock()
	if !already {
		m.log.Info("unlocked: this manager seals and opens secrets now")
	}
	return &api.UnlockResult{Manager: m.id.NodeID, AlreadyUnlocked: already}, nil
}

// rotationProgressEvery is how many secrets go by between two progress
// lines of a rotation.
const rotationProgressEvery = 100

// RotateDataKey implements api.Backend: it switches the cluster to a new
// data key in one write (the old one kept as PreviousDataKey), seals each
// secret again under it in a write of its own, then drops the old key.
// If this leader stops part way, every secret still opens (under one key
// or the other) and the next rotation finishes the job.
func (m *manager) RotateDataKey(ctx context.Context, progress func(api.KeyRotation)) error {
	if !m.node.IsLeader() {
		return m.notLeader()
	}
	// A client that goes away does not stop it: half a rotation is
	// finished only by the next one.
	ctx = context.WithoutCancel(ctx)
	rot, dataKey, err := m.startRotation(ctx)
	if err != nil {
		return err
	}
	if rot.NoKey {
		rot.Done = true
		progress(rot)
		return nil
	}
	list, err := m.node.Store().ListSecrets()
	if err != nil {
		return err
	}
	rot.Total = len(list)
	progress(rot)
	for i, s := range list {
		n, err := m.resealSecret(ctx, s.ID)
		if err != nil {
			return err
		}
		count(&rot, n)
		if (i+1)%rotationProgressEvery == 0 {
			progress(rot)
		}
	}
	if err := m.finishRotation(ctx, dataKey, &rot); err != nil {
		return err
	}
	rot.Done = true
	progress(rot)
	m.log.Info("data key rotated", "secrets", rot.Secrets, "versions", rot.Versions, "resumed", rot.Resumed, "new_kek", rot.NewKEK)
	return nil
}

// startRotation puts the new data key in place, or finds the one an
// unfinished rotation put there, and returns it (wrapped).
func (m *manager) startRotation(ctx context.Context) (api.KeyRotation, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// After a barrier: a rotation the previous leader began must be seen.
	c, err := m.clusterAfterBarrier(ctx)
	if err != nil {
		return api.KeyRotation{}, nil, err
	}
	m.keysMu.Lock()
	unlock := m.unlockKey
	m.keysMu.Unlock()
	kek, err := m.kek(c, unlock)
	if err != nil {
		return api.KeyRotation{}, nil, err
	}
	if len(c.DataKey) == 0 {
		return api.KeyRotation{NoKey: true}, nil, nil
	}
	if len(c.PreviousDataKey) > 0 {
		if _, err := secrets.UnwrapWithPrevious(kek, c.ID, c.DataKey, c.PreviousDataKey); err != nil {
			return api.KeyRotation{}, nil, err
		}
		m.log.Warn("finishing the data key rotation an earlier leader left unfinished")
		return api.KeyRotation{Resumed: true}, c.DataKey, nil
	}
	next := types.Clone(c)
	newKEK := kek
	if !c.Autolock {
		// The KEK changes too: a new salt. The unlock key of an
		// autolocked cluster stays; each manager holds it.
		next.EncryptionSalt = make([]byte, types.EncryptionSaltSize)
		if _, err := rand.Read(next.EncryptionSalt); err != nil {
			return api.KeyRotation{}, nil, err
		}
		if newKEK, err = secrets.DeriveKEK(c.ID, next.EncryptionSalt); err != nil {
			return api.KeyRotation{}, nil, err
		}
	}
	if next.DataKey, next.PreviousDataKey, err = secrets.RotateDataKey(kek, newKEK, c.ID, c.DataKey, rand.Reader); err != nil {
		return api.KeyRotation{}, nil, err
	}
	if err := m.Apply(ctx, &fsm.SetCluster{Cluster: next}); err != nil {
		return api.KeyRotation{}, nil, fmt.Errorf("daemon: store the new data key: %w", err)
	}
	m.log.Info("new data key in place; sealing every secret again under it")
	return api.KeyRotation{NewKEK: !c.Autolock}, next.DataKey, nil
}

// resealSecret seals secret id again under the data key, in one write, and
// returns how many of its versions it sealed again (0: all were already,
// or the secret is gone).
func (m *manager) resealSecret(ctx context.Context, id string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.node.IsLeader() {
		return 0, m.notLeader()
	}
	s, err := m.node.Store().GetSecret(id)
	if errors.Is(err, state.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	keys, err := m.cachedKeyring(ctx)
	if err != nil {
		return 0, err
	}
	next, n, err := resealed(keys, s)
	if err != nil || n == 0 {
		return 0, err
	}
	if err := m.Apply(ctx, &fsm.UpdateSecret{Secret: next}); err != nil {
		return 0, fmt.Errorf("daemon: store secret %s sealed under the new data key: %w", s.Name, err)
	}
	return n, nil
}

// finishRotation checks, under m.mu, that every secret is sealed under the
// data key (sealing again any written meanwhile under the old one), then
// drops the old key from the cluster record.
func (m *manager) finishRotation(ctx context.Context, dataKey []byte, rot *api.KeyRotation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.node.IsLeader() {
		return m.notLeader()
	}
	keys, err := m.cachedKeyring(ctx)
	if err != nil {
		return err
	}
	list, err := m.node.Store().ListSecrets()
	if err != nil {
		return err
	}
	for _, s := range list {
		next, n, err := resealed(keys, s)
		if err != nil {
			return err
		}
		if n > 0 {
			if err := m.Apply(ctx, &fsm.UpdateSecret{Secret: next}); err != nil {
				return fmt.Errorf("daemon: store secret %s sealed under the new data key: %w", s.Name, err)
			}
			count(rot, n)
		}
	}
	c, err := m.node.Store().GetCluster()
	if err != nil {
		return err
	}
	if !bytes.Equal(c.DataKey, dataKey) {
		return fmt.Errorf("%w: the cluster's data key changed while this rotation ran (another leader rotated it): run `warren secret rotate-key` again to finish",
			fsm.ErrConflict)
	}
	if len(c.PreviousDataKey) == 0 {
		return nil
	}
	c = types.Clone(c)
	c.PreviousDataKey = nil
	if err := m.Apply(ctx, &fsm.SetCluster{Cluster: c}); err != nil {
		return fmt.Errorf("daemon: drop the previous data key: %w", err)
	}
	return nil
}

// count adds a secret of which n versions were sealed again.
func count(rot *api.KeyRotation, n int) {
	if n > 0 {
		rot.Secrets++
		rot.Versions += n
	}
}

// resealed returns a copy of s with every version sealed under the data
// key of keys, and how many it had to seal again.
func resealed(keys *secrets.Keyring, s *types.Secret) (*types.Secret, int, error) {
	out := types.Clone(s)
	n := 0
	one := func(v int, data *[]byte) error {
		d, again, err := keys.Reseal(types.SealedFor(s.ID, v), *data, rand.Reader)
		if err != nil {
			return fmt.Errorf("daemon: secret %s, version %d: %w", s.Name, v, err)
		}
		if again {
			*data = d
			n++
		}
		return nil
	}
	if err := one(s.CurrentVersion(), &out.Data); err != nil {
		return nil, 0, err
	}
	for _, p := range out.Previous {
		if err := one(p.Version, &p.Data); err != nil {
			return nil, 0, err
		}
	}
	return out, n, nil
}

// apiBackend is the manager as its API serves it: a write that stores
// sealed secrets is checked first, under m.mu, against the keys the
// cluster record holds now. A handler seals a value, then writes it; if a
// rotation changed the data key in between, the value (or an older
// version the write carries along) is sealed again under the new key, or,
// once the old key is dropped, the write is refused and can be sent again.
type apiBackend struct{ *manager }

var _ api.Backend = apiBackend{}

// Apply implements api.Backend.
func (b apiBackend) Apply(ctx context.Context, cmd fsm.Command) error {
	list := sealedIn(cmd)
	if len(list) == 0 {
		return b.manager.Apply(ctx, cmd)
	}
	if !b.node.IsLeader() {
		return b.notLeader()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	keys, err := b.cachedKeyring(ctx)
	if err != nil {
		return err
	}
	for _, s := range list {
		next, _, err := resealed(keys, s)
		if errors.Is(err, secrets.ErrDamaged) {
			return fmt.Errorf("%w: secret %s was sealed under a data key the cluster no longer holds (`warren secret rotate-key` ran meanwhile): send it again",
				fsm.ErrConflict, s.Name)
		}
		if err != nil {
			return err
		}
		*s = *next
	}
	return b.manager.Apply(ctx, cmd)
}

// sealedIn lists the secret records a command stores.
func sealedIn(cmd fsm.Command) []*types.Secret {
	switch c := cmd.(type) {
	case *fsm.CreateSecret:
		if c.Secret != nil {
			return []*types.Secret{c.Secret}
		}
	case *fsm.UpdateSecret:
		if c.Secret != nil {
			return []*types.Secret{c.Secret}
		}
	case *fsm.Batch:
		var out []*types.Secret
		for _, sub := range c.Commands {
			out = append(out, sealedIn(sub)...)
		}
		return out
	}
	return nil
}
