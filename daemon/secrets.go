package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/secrets"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// SealSecret implements api.Backend: the value is sealed with the
// cluster's data key, which the first secret makes (init, in an autolocked
// cluster; a locked manager refuses, with api.ErrLocked). Under m.mu, as a
// join token's rotation: the cluster record is read and written in one
// step on this leader, so two first secrets cannot make two keys.
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

// keyring unwraps the cluster's data key (and, during a rotation, the
// previous one) with the cluster's KEK (kek); create lets it make the data
// key if there is none yet (the leader, under m.mu).
func (m *manager) keyring(ctx context.Context, create bool) (*secrets.Keyring, error) {
	c, err := m.node.Store().GetCluster()
	if err != nil {
		return nil, err
	}
	m.keysMu.Lock()
	unlock := m.unlockKey
	m.keysMu.Unlock()
	kek, err := m.kek(c, unlock)
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
	return secrets.UnwrapWithPrevious(kek, c.ID, c.DataKey, c.PreviousDataKey)
}

// cachedKeyring is keyring without the key derivation (PBKDF2, 100,000
// rounds: tens of milliseconds) on every heartbeat of a node whose tasks
// use secrets: the keyring is kept for as long as the cluster record's
// wrapped data keys are the same.
func (m *manager) cachedKeyring(ctx context.Context) (*secrets.Keyring, error) {
	c, err := m.node.Store().GetCluster()
	if err != nil {
		return nil, err
	}
	of := keysOf(c)
	m.keysMu.Lock()
	defer m.keysMu.Unlock()
	if m.keys != nil && bytes.Equal(m.keysOf, of) {
		return m.keys, nil
	}
	kek, err := m.kek(c, m.unlockKey)
	if err != nil {
		return nil, err
	}
	if len(c.DataKey) == 0 {
		return nil, errors.New("daemon: the cluster has no secrets key yet")
	}
	keys, err := secrets.UnwrapWithPrevious(kek, c.ID, c.DataKey, c.PreviousDataKey)
	if err != nil {
		return nil, err
	}
	m.keys, m.keysOf = keys, of
	return keys, nil
}

// withSecrets returns the assignments with the plaintext of the secrets of
// each task that should run, opened for the node that asked, which is the
// task's node: a worker gets a secret only with a task of its that uses
// it, over its mutual TLS heartbeat. The leader's cached assignments are
// not changed.
func (m *manager) withSecrets(ctx context.Context, as []agent.Assignment) ([]agent.Assignment, error) {
	// The decision is the core's; the keyring is unwrapped only when a
	// secret is to be opened.
	var keys *secrets.Keyring
	open := func(sealedFor string, sealed []byte) ([]byte, error) {
		if keys == nil {
			k, err := m.cachedKeyring(ctx)
			if err != nil {
				return nil, err
			}
			keys = k
		}
		return keys.Open(sealedFor, sealed)
	}
	return dispatcher.WithSecrets(m.node.Store(), as, open)
}
