package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/secrets"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// SealSecret implements api.Backend: the value is sealed with the
// cluster's data key, which the first secret makes. Under m.mu, as a join
// token's rotation: the cluster record is read and written in one step on
// this leader, so two first secrets cannot make two keys.
func (m *manager) SealSecret(ctx context.Context, id string, plaintext []byte) ([]byte, error) {
	if !m.node.IsLeader() {
		return nil, m.notLeader()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	keys, err := m.keyring(ctx, true)
	if err != nil {
		return nil, err
	}
	return keys.Seal(id, plaintext, rand.Reader)
}

// keyring unwraps the cluster's data key, with the key derived from the
// cluster ID and salt; create lets it make the data key if there is none
// yet (the leader, under m.mu).
func (m *manager) keyring(ctx context.Context, create bool) (*secrets.Keyring, error) {
	c, err := m.node.Store().GetCluster()
	if err != nil {
		return nil, err
	}
	kek, err := secrets.DeriveKEK(c.ID, c.EncryptionSalt)
	if err != nil {
		return nil, err
	}
	if len(c.DataKey) == 0 {
		if !create {
			return nil, errors.New("daemon: the cluster has no secrets key yet")
		}
		wrapped, err := secrets.NewDataKey(kek, c.ID, rand.Reader)
		if err != nil {
			return nil, err
		}
		c = types.Clone(c)
		c.DataKey = wrapped
		if err := m.Apply(ctx, &fsm.SetCluster{Cluster: c}); err != nil {
			return nil, fmt.Errorf("daemon: store the secrets key: %w", err)
		}
		m.log.Info("made the cluster's secrets key")
	}
	return secrets.Unwrap(kek, c.ID, c.DataKey)
}

// cachedKeyring is keyring without the key derivation (PBKDF2, 100,000
// rounds: tens of milliseconds) on every heartbeat of a node whose tasks
// use secrets: the keyring is kept for as long as the cluster record's
// wrapped data key is the same.
func (m *manager) cachedKeyring(ctx context.Context) (*secrets.Keyring, error) {
	c, err := m.node.Store().GetCluster()
	if err != nil {
		return nil, err
	}
	m.keysMu.Lock()
	defer m.keysMu.Unlock()
	if m.keys != nil && bytes.Equal(m.keysOf, c.DataKey) {
		return m.keys, nil
	}
	keys, err := m.keyring(ctx, false)
	if err != nil {
		return nil, err
	}
	m.keys, m.keysOf = keys, c.DataKey
	return keys, nil
}

// withSecrets returns the assignments with the plaintext of the secrets of
// each task that should run, opened for the node that asked, which is the
// task's node: a worker gets a secret only with a task of its that uses
// it, over its mutual TLS heartbeat. The leader's cached assignments are
// not changed.
func (m *manager) withSecrets(ctx context.Context, as []agent.Assignment) ([]agent.Assignment, error) {
	need := slices.ContainsFunc(as, func(a agent.Assignment) bool {
		return a.Task.DesiredState == types.ContainerRunning && len(a.Task.Secrets) > 0
	})
	if !need {
		return as, nil
	}
	keys, err := m.cachedKeyring(ctx)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(as)
	for i, a := range out {
		if a.Task.DesiredState != types.ContainerRunning || len(a.Task.Secrets) == 0 {
			continue
		}
		values := map[string][]byte{}
		for _, id := range a.Task.Secrets {
			s, err := m.node.Store().GetSecret(id)
			if errors.Is(err, state.ErrNotFound) {
				// Deleted with --force: the task runs on without it.
				continue
			}
			if err != nil {
				return nil, err
			}
			v := a.Task.SecretVersionOf(s.ID)
			sealed, ok := s.VersionData(v)
			if !ok {
				return nil, fmt.Errorf("daemon: secret %s has no version %d, which task %s was made with", s.Name, v, a.Task.ID)
			}
			plain, err := keys.Open(types.SealedFor(s.ID, v), sealed)
			if err != nil {
				return nil, fmt.Errorf("daemon: open secret %s for task %s: %w", s.Name, a.Task.ID, err)
			}
			values[s.Name] = plain
		}
		out[i].Secrets = values
	}
	return out, nil
}
