package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/secrets"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Secrets have endpoints of their own rather than the generic record
// ones: their value goes in once, is sealed by the leader before it is
// replicated, and never comes out (only workers get it, with a task that
// uses it).

// SecretSpec is a secret to create: its name and its value, in clear (the
// API is TLS only).
type SecretSpec struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// SecretInfo is what the API tells of a secret: never its value.
type SecretInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Size      int       `json:"size"` // bytes of the value
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Version is the current version; Versions lists every version kept
	// (older ones while a task uses them), oldest first.
	Version  int   `json:"version"`
	Versions []int `json:"versions"`
	// UsedBy names the services that use it.
	UsedBy []string `json:"used_by"`
}

func secretInfo(s *types.Secret, svcs []*types.Service) *SecretInfo {
	info := &SecretInfo{ID: s.ID, Name: s.Name, Size: max(len(s.Data)-secrets.Overhead(), 0),
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, UsedBy: []string{}, Version: s.CurrentVersion()}
	for _, p := range s.Previous {
		info.Versions = append(info.Versions, p.Version)
	}
	info.Versions = append(info.Versions, s.CurrentVersion())
	for _, svc := range svcs {
		if slices.Contains(svc.Secrets, s.ID) {
			info.UsedBy = append(info.UsedBy, svc.Name)
		}
	}
	slices.Sort(info.UsedBy)
	return info
}

// describeSecret is what the API tells of the secret with ID or name key.
func describeSecret(rd state.Reader, key string) (*SecretInfo, error) {
	s, err := findSecret(rd, key)
	if err != nil {
		return nil, err
	}
	svcs, err := rd.ListServices()
	if err != nil {
		return nil, err
	}
	return secretInfo(s, svcs), nil
}

// findSecret finds a secret by ID, else by name.
func findSecret(rd state.Reader, key string) (*types.Secret, error) {
	s, err := rd.GetSecret(key)
	if errors.Is(err, state.ErrNotFound) {
		s, err = rd.GetSecretByName(key)
	}
	if errors.Is(err, state.ErrNotFound) {
		return nil, fmt.Errorf("%w: no secret with ID or name %q: list them with `warren secret ls`", state.ErrNotFound, key)
	}
	return s, err
}

func serveSecrets(h *handler) {
	all := recordsPath(types.KindSecret)
	one := all + "/{key}"

	h.handle("GET "+all, h.admin, func(w http.ResponseWriter, r *http.Request) error {
		infos, err := read(h, r, func(rd state.Reader) ([]*SecretInfo, error) {
			list, err := rd.ListSecrets()
			if err != nil {
				return nil, err
			}
			svcs, err := rd.ListServices()
			if err != nil {
				return nil, err
			}
			out := make([]*SecretInfo, len(list))
			for i, s := range list {
				out[i] = secretInfo(s, svcs)
			}
			return out, nil
		})
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, orEmpty(infos))
	})

	h.handle("GET "+one, h.admin, func(w http.ResponseWriter, r *http.Request) error {
		info, err := read(h, r, func(rd state.Reader) (*SecretInfo, error) { return describeSecret(rd, r.PathValue("key")) })
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, info)
	})

	h.handle("POST "+all, h.admin, func(w http.ResponseWriter, r *http.Request) error {
		spec, err := decodeSecretSpec(w, r)
		if err != nil {
			return err
		}
		if err := types.ValidateName(spec.Name); err != nil {
			return fmt.Errorf("%w: secret name %q: %v", types.ErrInvalid, spec.Name, err)
		}
		now := h.Clock.Now()
		s := &types.Secret{ID: NewID(), Name: spec.Name, CreatedAt: now, UpdatedAt: now}
		sealed, err := h.Backend.SealSecret(r.Context(), s.ID, spec.Data)
		clear(spec.Data)
		if err != nil {
			return err
		}
		s.Data = sealed
		if err := h.Backend.Apply(r.Context(), &fsm.CreateSecret{Secret: s}); err != nil {
			return err
		}
		return reply(w, http.StatusCreated, secretInfo(s, nil))
	})

	// PUT makes the secret's next version: tasks made from now on get it,
	// running ones keep theirs until they are replaced (`service update
	// --force-recreate`), and a version no task uses any more is dropped.
	h.handle("PUT "+one, h.admin, func(w http.ResponseWriter, r *http.Request) error {
		spec, err := decodeSecretSpec(w, r)
		if err != nil {
			return err
		}
		old, err := view(r.Context(), h.Backend, false, func(rd state.Reader) (*types.Secret, error) {
			return findSecret(rd, r.PathValue("key"))
		})
		if err != nil {
			return err
		}
		if spec.Name != "" && spec.Name != old.Name {
			return fmt.Errorf("%w: the body names secret %q but %q is %s: a secret cannot be renamed; create a new one",
				ErrBadRequest, spec.Name, r.PathValue("key"), old.Name)
		}
		next, err := nextSecretVersion(r.Context(), h, old, spec.Data)
		clear(spec.Data)
		if err != nil {
			return err
		}
		if err := h.Backend.Apply(r.Context(), &fsm.UpdateSecret{Secret: next, IfVersion: old.CurrentVersion()}); err != nil {
			return err
		}
		// As stored: the store dropped the versions no task uses.
		info, err := view(r.Context(), h.Backend, false, func(rd state.Reader) (*SecretInfo, error) { return describeSecret(rd, old.ID) })
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, info)
	})

	h.handle("DELETE "+one, h.admin, func(w http.ResponseWriter, r *http.Request) error {
		force := r.URL.Query().Get("force") == "true"
		old, err := view(r.Context(), h.Backend, false, func(rd state.Reader) (*types.Secret, error) {
			return findSecret(rd, r.PathValue("key"))
		})
		if err != nil {
			return err
		}
		// --force takes it out of the services that use it in the same
		// write (their tasks are not restarted: running ones keep the
		// value they have).
		err = h.Backend.Apply(r.Context(), &fsm.DeleteSecret{ID: old.ID, Force: force})
		if errors.Is(err, fsm.ErrInUse) {
			return fmt.Errorf("%w (or pass --force, which takes it out of them)", err)
		}
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// decodeSecretSpec reads a secret's name and value from the body, and
// checks the value.
func decodeSecretSpec(w http.ResponseWriter, r *http.Request) (SecretSpec, error) {
	var spec SecretSpec
	// Room for a value one byte over the limit (base64 in JSON), so that
	// it is refused for its size, naming the limit.
	if err := decodeBodyUpTo(w, r, &spec, (types.MaxSecretSize+3)*4/3+4096); err != nil {
		return spec, err
	}
	if err := types.ValidateSecretData(spec.Data); err != nil {
		return spec, err
	}
	return spec, nil
}

// nextSecretVersion returns old with data sealed as its next version, the
// current one kept among the previous (the store drops those no task
// uses).
func nextSecretVersion(ctx context.Context, h *handler, old *types.Secret, data []byte) (*types.Secret, error) {
	next := types.Clone(old)
	v := old.CurrentVersion() + 1
	sealed, err := h.Backend.SealSecret(ctx, types.SealedFor(old.ID, v), data)
	if err != nil {
		return nil, err
	}
	next.Previous = append(next.Previous, &types.SecretVersion{Version: old.CurrentVersion(), Data: old.Data, CreatedAt: old.UpdatedAt})
	next.Data, next.Version, next.UpdatedAt = sealed, v, h.Clock.Now()
	return next, nil
}

// CreateSecret creates the secret name with value data, sealed by the
// leader, and returns what the API tells of it.
func (c *Client) CreateSecret(ctx context.Context, name string, data []byte) (*SecretInfo, error) {
	// Not retry-safe: a create sent twice is refused the second time
	// (name taken), after the first was stored.
	return fetch[*SecretInfo](ctx, c, send(http.MethodPost, recordsPath(types.KindSecret), &SecretSpec{Name: name, Data: data}, false))
}

// ListSecrets lists the secrets, without their values.
func (c *Client) ListSecrets(ctx context.Context, stale bool) ([]*SecretInfo, error) {
	return fetch[[]*SecretInfo](ctx, c, get(recordsPath(types.KindSecret), staleQuery(stale)))
}

// GetSecret describes the secret with ID or name key, without its value.
func (c *Client) GetSecret(ctx context.Context, key string) (*SecretInfo, error) {
	return fetch[*SecretInfo](ctx, c, get(recordsPath(types.KindSecret)+"/"+url.PathEscape(key), nil))
}

// UpdateSecret makes data the next version of the secret with ID or name
// key, and returns what the API tells of it.
func (c *Client) UpdateSecret(ctx context.Context, key string, data []byte) (*SecretInfo, error) {
	// Not retry-safe: sent twice, it would make two versions.
	return fetch[*SecretInfo](ctx, c, send(http.MethodPut, recordsPath(types.KindSecret)+"/"+url.PathEscape(key), &SecretSpec{Data: data}, false))
}

// DeleteSecret deletes the secret with ID or name key. One a service uses
// is refused (fsm.ErrInUse) unless force, which first takes it out of
// those services.
func (c *Client) DeleteSecret(ctx context.Context, key string, force bool) error {
	path := recordsPath(types.KindSecret) + "/" + url.PathEscape(key)
	if force {
		path += "?force=true"
	}
	return c.exchange(ctx, send(http.MethodDelete, path, nil, true), nil)
}
