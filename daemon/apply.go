package daemon

import (
	"context"
	"crypto/subtle"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// SecretMatches implements api.Backend: `warren apply` asks it whether a
// secret's stored value is the one a document gives, so that applying the
// same value again makes no new version. The plaintext opened here never
// leaves this call.
func (m *manager) SecretMatches(ctx context.Context, s *types.Secret, plaintext []byte) (bool, error) {
	if !m.node.IsLeader() {
		return false, m.notLeader()
	}
	keys, err := m.cachedKeyring(ctx)
	if err != nil {
		return false, err
	}
	stored, err := keys.Open(types.SealedFor(s.ID, s.CurrentVersion()), s.Data)
	if err != nil {
		return false, err
	}
	defer clear(stored)
	return subtle.ConstantTimeCompare(stored, plaintext) == 1, nil
}
