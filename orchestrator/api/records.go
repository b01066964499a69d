package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// The records users manage with the same five endpoints each: services and
// networks. One generic implementation serves both; secrets (secrets.go)
// and volumes (volumes.go) have endpoints of their own.

// recordKind describes one kind of record to the generic endpoints.
type recordKind[T any, P types.RecordPtr[T]] struct {
	kind      types.Kind
	get       func(state.Reader, string) (P, error)
	getByName func(state.Reader, string) (P, error)
	list      func(state.Reader) ([]P, error)
	create    func(P) fsm.Command
	update    func(P) fsm.Command
	remove    func(id string) fsm.Command
	fields    func(P) serverFields
	// serve, when set, replaces the generic endpoints with the kind's own.
	serve func(*handler)
}

// serverFields points into a record at what the server sets: its ID, and
// its creation and update times where the kind has them (nil otherwise).
type serverFields struct {
	id               *string
	created, updated *time.Time
}

var services = &recordKind[types.Service, *types.Service]{
	kind:      types.KindService,
	get:       state.Reader.GetService,
	getByName: state.Reader.GetServiceByName,
	list:      state.Reader.ListServices,
	create:    func(s *types.Service) fsm.Command { return &fsm.CreateService{Service: s} },
	update:    func(s *types.Service) fsm.Command { return &fsm.UpdateService{Service: s} },
	remove:    func(id string) fsm.Command { return &fsm.DeleteService{ID: id} },
	fields:    func(s *types.Service) serverFields { return serverFields{&s.ID, &s.CreatedAt, &s.UpdatedAt} },
}

// volumes have endpoints of their own (volumes.go); the kind is here only
// so that serving it serves those.
var volumes = &recordKind[types.Volume, *types.Volume]{kind: types.KindVolume, serve: serveVolumes}

var networks = &recordKind[types.Network, *types.Network]{
	kind:      types.KindNetwork,
	get:       state.Reader.GetNetwork,
	getByName: state.Reader.GetNetworkByName,
	list:      state.Reader.ListNetworks,
	create:    func(n *types.Network) fsm.Command { return &fsm.CreateNetwork{Network: n} },
	update:    func(n *types.Network) fsm.Command { return &fsm.UpdateNetwork{Network: n} },
	remove:    func(id string) fsm.Command { return &fsm.DeleteNetwork{ID: id} },
	fields:    func(n *types.Network) serverFields { return serverFields{&n.ID, nil, nil} },
}

// recordsPath is where the records of kind are served.
func recordsPath(kind types.Kind) string { return Prefix + "/" + kind.Bucket() }

// find finds a record by ID, else by name. An ID comes first as it never
// changes, while a name can be given to another record.
func (k *recordKind[T, P]) find(rd state.Reader, key string) (P, error) {
	r, err := k.get(rd, key)
	if errors.Is(err, state.ErrNotFound) {
		r, err = k.getByName(rd, key)
	}
	if errors.Is(err, state.ErrNotFound) {
		return nil, fmt.Errorf("%w: no %s with ID or name %q: list them with `warren %s ls`", state.ErrNotFound, k.kind, key, k.kind)
	}
	return r, err
}

// stamp sets the times the record has: created, and updated to now.
func (f serverFields) stamp(created, now time.Time) {
	if f.created != nil {
		*f.created = created
	}
	if f.updated != nil {
		*f.updated = now
	}
}

func serveRecords[T any, P types.RecordPtr[T]](h *handler, k *recordKind[T, P]) {
	if k.serve != nil {
		k.serve(h)
		return
	}
	all := recordsPath(k.kind)
	one := all + "/{key}"
	resolve := func(r *http.Request) (P, error) {
		// Writes start from the leader's state, whatever ?stale says.
		return view(r.Context(), h.Backend, false, func(rd state.Reader) (P, error) { return k.find(rd, r.PathValue("key")) })
	}

	h.handle("GET "+all, h.admin, func(w http.ResponseWriter, r *http.Request) error {
		recs, err := read(h, r, k.list)
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, orEmpty(recs))
	})

	h.handle("GET "+one, h.admin, func(w http.ResponseWriter, r *http.Request) error {
		rec, err := read(h, r, func(rd state.Reader) (P, error) { return k.find(rd, r.PathValue("key")) })
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, rec)
	})

	h.handle("POST "+all, h.admin, func(w http.ResponseWriter, r *http.Request) error {
		rec := P(new(T))
		if err := decodeBody(w, r, rec); err != nil {
			return err
		}
		f := k.fields(rec)
		if *f.id == "" {
			*f.id = NewID()
		}
		now := h.Clock.Now()
		f.stamp(now, now)
		if err := h.Backend.Apply(r.Context(), k.create(rec)); err != nil {
			return err
		}
		return reply(w, http.StatusCreated, rec)
	})

	h.handle("PUT "+one, h.admin, func(w http.ResponseWriter, r *http.Request) error {
		rec := P(new(T))
		if err := decodeBody(w, r, rec); err != nil {
			return err
		}
		old, err := resolve(r)
		if err != nil {
			return err
		}
		f, was := k.fields(rec), k.fields(old)
		if *f.id != "" && *f.id != *was.id {
			return fmt.Errorf("%w: the body is %s %s but %q is %s: leave the ID out, or send it to the record's own path",
				ErrBadRequest, k.kind, *f.id, r.PathValue("key"), *was.id)
		}
		*f.id = *was.id
		var created time.Time
		if was.created != nil {
			created = *was.created
		}
		f.stamp(created, h.Clock.Now())
		if err := h.Backend.Apply(r.Context(), k.update(rec)); err != nil {
			return err
		}
		return reply(w, http.StatusOK, rec)
	})

	h.handle("DELETE "+one, h.admin, func(w http.ResponseWriter, r *http.Request) error {
		old, err := resolve(r)
		if err != nil {
			return err
		}
		if err := h.Backend.Apply(r.Context(), k.remove(old.RecordID())); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// The client's side: one generic function per endpoint, and a one-line
// method per kind so that callers get typed records (grouped by operation, as godoc lists them).

func createRecord[P types.Record](ctx context.Context, c *Client, r P) (P, error) {
	// Not retry-safe: the server gives a record without an ID a new one,
	// so a create sent twice could make two records.
	return fetch[P](ctx, c, send(http.MethodPost, recordsPath(r.Kind()), r, false))
}

func listRecords[P types.Record](ctx context.Context, c *Client, kind types.Kind, stale bool) ([]P, error) {
	return fetch[[]P](ctx, c, get(recordsPath(kind), staleQuery(stale)))
}

func getRecord[P types.Record](ctx context.Context, c *Client, kind types.Kind, key string) (P, error) {
	return fetch[P](ctx, c, get(recordsPath(kind)+"/"+url.PathEscape(key), nil))
}

// updateRecord replaces the record r names, by ID, or by name when r has
// no ID.
func updateRecord[P types.Record](ctx context.Context, c *Client, r P) (P, error) {
	key := r.RecordID()
	if key == "" {
		key = r.RecordName()
	}
	if key == "" {
		var zero P
		return zero, fmt.Errorf("%w: the %s to update has neither an ID nor a name: give one of them", ErrBadRequest, r.Kind())
	}
	// Retry-safe: a replacement sent twice leaves the record as once.
	return fetch[P](ctx, c, send(http.MethodPut, recordsPath(r.Kind())+"/"+url.PathEscape(key), r, true))
}

func deleteRecord(ctx context.Context, c *Client, kind types.Kind, key string) error {
	return c.exchange(ctx, send(http.MethodDelete, recordsPath(kind)+"/"+url.PathEscape(key), nil, true), nil)
}

// CreateNetwork creates n (the server gives it an ID if it has none) and
// returns it as stored.
func (c *Client) CreateNetwork(ctx context.Context, n *types.Network) (*types.Network, error) {
	return createRecord(ctx, c, n)
}

// CreateService creates s (the server gives it an ID if it has none) and
// returns it as stored.
func (c *Client) CreateService(ctx context.Context, s *types.Service) (*types.Service, error) {
	return createRecord(ctx, c, s)
}

// DeleteNetwork deletes the network with ID or name key; one a service is
// attached to is refused (fsm.ErrInUse).
func (c *Client) DeleteNetwork(ctx context.Context, key string) error {
	return deleteRecord(ctx, c, types.KindNetwork, key)
}

// DeleteService deletes the service with ID or name key, and its tasks.
func (c *Client) DeleteService(ctx context.Context, key string) error {
	return deleteRecord(ctx, c, types.KindService, key)
}

// GetNetwork returns the network with ID or name key.
func (c *Client) GetNetwork(ctx context.Context, key string) (*types.Network, error) {
	return getRecord[*types.Network](ctx, c, types.KindNetwork, key)
}

// GetService returns the service with ID or name key.
func (c *Client) GetService(ctx context.Context, key string) (*types.Service, error) {
	return getRecord[*types.Service](ctx, c, types.KindService, key)
}

// ListNetworks lists the networks; stale reads the answering manager's state,
// which may lag the leader's but needs no leader.
func (c *Client) ListNetworks(ctx context.Context, stale bool) ([]*types.Network, error) {
	return listRecords[*types.Network](ctx, c, types.KindNetwork, stale)
}

// ListServices lists the services; stale reads the answering manager's state,
// which may lag the leader's but needs no leader.
func (c *Client) ListServices(ctx context.Context, stale bool) ([]*types.Service, error) {
	return listRecords[*types.Service](ctx, c, types.KindService, stale)
}

// UpdateNetwork replaces the network n names (by ID, else by name) with n.
func (c *Client) UpdateNetwork(ctx context.Context, n *types.Network) (*types.Network, error) {
	return updateRecord(ctx, c, n)
}

// UpdateService replaces the service s names (by ID, else by name) with s.
func (c *Client) UpdateService(ctx context.Context, s *types.Service) (*types.Service, error) {
	return updateRecord(ctx, c, s)
}
