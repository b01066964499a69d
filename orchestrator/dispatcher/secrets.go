package dispatcher

import (
	"errors"
	"fmt"
	"slices"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// ErrSecretVersionGone is returned by WithSecrets for a task made with a
// version of a secret that the secret no longer keeps.
var ErrSecretVersionGone = errors.New("dispatcher: secret version gone")

// Opener opens a secret's sealed value, sealed for sealedFor (what
// types.SealedFor gives for the secret's ID and version). The leader's
// keyring in production, a seeded one in the simulator: the core holds no
// key.
type Opener func(sealedFor string, sealed []byte) ([]byte, error)

// WithSecrets decides which secret values go to a node with its
// assignments: each task meant to run gets the plaintext of the secrets it
// uses, by name, at the version it was made with; a task meant to stop gets
// none, and a secret deleted with --force is skipped (the task runs on
// without it). Give it one node's assignments, as the leader answers that
// node's heartbeat: secrets then reach a node only with a task of its that
// uses them.
//
// The assignments are returned as they are when no task needs a secret (and
// open is not called); otherwise a copy is, and those given are not changed,
// as they may be the leader's cache.
func WithSecrets(r state.Reader, as []agent.Assignment, open Opener) ([]agent.Assignment, error) {
	if !slices.ContainsFunc(as, needsSecrets) {
		return as, nil
	}
	out := slices.Clone(as)
	// Each record once per answer: tasks of a service share their secrets,
	// and a record holds every version kept, sealed. Each task still gets
	// its own plaintext copy.
	records := map[string]*types.Secret{} // nil: deleted
	for i, a := range out {
		if !needsSecrets(a) {
			continue
		}
		values := map[string][]byte{}
		for _, id := range a.Task.Secrets {
			s, seen := records[id]
			if !seen {
				var err error
				s, err = r.GetSecret(id)
				if errors.Is(err, state.ErrNotFound) {
					s, err = nil, nil
				}
				if err != nil {
					return nil, err
				}
				records[id] = s
			}
			if s == nil {
				continue // deleted with --force: the task runs on without it
			}
			v := a.Task.SecretVersionOf(s.ID)
			sealed, ok := s.VersionData(v)
			if !ok {
				return nil, fmt.Errorf("%w: secret %s has no version %d, which task %s was made with", ErrSecretVersionGone, s.Name, v, a.Task.ID)
			}
			plain, err := open(types.SealedFor(s.ID, v), sealed)
			if err != nil {
				return nil, fmt.Errorf("dispatcher: open secret %s for task %s: %w", s.Name, a.Task.ID, err)
			}
			values[s.Name] = plain
		}
		out[i].Secrets = values
	}
	return out, nil
}

// needsSecrets reports whether the assignment's task is to run with
// secrets: a task meant to stop gets none, even while it still runs.
func needsSecrets(a agent.Assignment) bool {
	return a.Task != nil && a.Task.DesiredState == types.ContainerRunning && len(a.Task.Secrets) > 0
}
