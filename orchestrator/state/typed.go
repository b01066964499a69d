package state

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// New returns the typed Store on kv. Single writes go through kv's group
// commit when it has one (Batcher).
func New(kv KV) Store {
	s := &store{kv: kv, write: kv.Update}
	if b, ok := kv.(Batcher); ok {
		s.write = b.Batch
	}
	return s
}

type store struct {
	kv    KV
	write func(func(KVTx) error) error
}

// indexed holds the fields that secondary indexes are built from; decoding
// only these from a stored record is cheaper than decoding all of it.
type indexed struct{ Name, ServiceID, NodeID string }

func indexedOf(r types.Record) indexed {
	f := indexed{Name: r.RecordName()}
	if c, ok := r.(*types.Container); ok {
		f.ServiceID, f.NodeID = c.ServiceID, c.NodeID
	}
	return f
}

// refIndex maps an owner (a service or a node) to the records that refer
// to it.
type refIndex struct {
	bucket string
	owner  func(indexed) string
}

func refKey(owner, id string) []byte {
	k := make([]byte, 0, len(owner)+1+len(id))
	k = append(k, owner...)
	k = append(k, 0)
	return append(k, id...)
}

// table is the typed access to one record bucket and its indexes.
type table[T any, P types.RecordPtr[T]] struct {
	kind   types.Kind
	byName string // name index bucket, or "" for kinds without unique names
	refs   []refIndex
}

func (t *table[T, P]) bucket() string { return t.kind.Bucket() }

func (t *table[T, P]) get(tx KVTx, id string) (P, error) {
	var v []byte
	var d *decoded
	if dv, ok := tx.(decodedValues); ok {
		v, d = dv.getDecoded(t.bucket(), []byte(id))
	} else {
		v = tx.Get(t.bucket(), []byte(id))
	}
	if v == nil {
		return nil, &NotFoundError{Kind: t.kind, Key: id}
	}
	return decode[T, P](v, d)
}

// decodedValues is an optional capability of a KVTx that keeps its values
// in memory (the in-memory KV): each value carries its decoded record once
// read, so a record read again is copied instead of decoded.
type decodedValues interface {
	getDecoded(bucket string, key []byte) ([]byte, *decoded)
	scanDecoded(bucket string, prefix []byte, fn func(k, v []byte, d *decoded) error) error
}

// decoded caches the record a stored value decodes to.
type decoded struct{ atomic.Value }

// decode returns the record stored as v: a copy of the cached record when
// d has one, else freshly decoded (and cached in d, when there is one).
// Every caller gets a record of its own.
func decode[T any, P types.RecordPtr[T]](v []byte, d *decoded) (P, error) {
	if d != nil {
		if c, ok := d.Load().(P); ok {
			return types.Clone(c), nil
		}
	}
	r, err := types.Decode[T, P](v)
	if err == nil && d != nil {
		d.Store(types.Clone(r))
	}
	return r, err
}

func (t *table[T, P]) getByName(tx KVTx, name string) (P, error) {
	id := tx.Get(t.byName, []byte(name))
	if id == nil {
		return nil, &NotFoundError{Kind: t.kind, Key: name, ByName: true}
	}
	r, err := t.get(tx, string(id))
	if err != nil {
		return nil, fmt.Errorf("state: index %s: name %q points to a missing %s: %w", t.byName, name, t.kind, err)
	}
	return r, nil
}

func (t *table[T, P]) list(tx KVTx) ([]P, error) {
	var out []P
	add := func(_, v []byte, d *decoded) error {
		r, err := decode[T, P](v, d)
		out = append(out, r)
		return err
	}
	if dv, ok := tx.(decodedValues); ok {
		return out, dv.scanDecoded(t.bucket(), nil, add)
	}
	err := tx.Scan(t.bucket(), nil, func(k, v []byte) error { return add(k, v, nil) })
	return out, err
}

// listRefs lists the records whose index ix points at owner.
func (t *table[T, P]) listRefs(tx KVTx, ix refIndex, owner string) ([]P, error) {
	var out []P
	err := tx.Scan(ix.bucket, refKey(owner, ""), func(_, id []byte) error {
		r, err := t.get(tx, string(id))
		if err != nil {
			return fmt.Errorf("state: index %s: %s %q points to a missing %s: %w", ix.bucket, owner, id, t.kind, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// put upserts r. Every check that can refuse it runs before the first
// write, so a refused put leaves the transaction unchanged.
func (t *table[T, P]) put(tx KVTx, r P) error {
	data, err := types.Encode(r)
	if err != nil {
		return err
	}
	id := r.RecordID()
	now := indexedOf(r)
	var nameOwner []byte
	if t.byName != "" {
		nameOwner = tx.Get(t.byName, []byte(now.Name))
		if nameOwner != nil && string(nameOwner) != id {
			return &NameTakenError{Kind: t.kind, Name: now.Name, Owner: string(nameOwner)}
		}
	}
	if t.unchanged(tx, id, now, nameOwner != nil) {
		// The common update: no indexed field changed, so the stored
		// record need not be read.
		return tx.Put(t.bucket(), []byte(id), data)
	}
	old, had, err := t.oldIndexed(tx, id)
	if err != nil {
		return err
	}
	if err := t.unindex(tx, id, old, had, now); err != nil {
		return err
	}
	if t.byName != "" && nameOwner == nil {
		if err := tx.Put(t.byName, []byte(now.Name), []byte(id)); err != nil {
			return err
		}
	}
	for _, ix := range t.refs {
		if o := ix.owner(now); o != "" && tx.Get(ix.bucket, refKey(o, id)) == nil {
			if err := tx.Put(ix.bucket, refKey(o, id), []byte(id)); err != nil {
				return err
			}
		}
	}
	return tx.Put(t.bucket(), []byte(id), data)
}

// unchanged reports whether every index already holds now's entries for id.
// Each record has one entry per index, so then none of its indexed fields
// changed. hasName says whether the name index maps now.Name to id.
func (t *table[T, P]) unchanged(tx KVTx, id string, now indexed, hasName bool) bool {
	if t.byName != "" && !hasName {
		return false
	}
	for _, ix := range t.refs {
		o := ix.owner(now)
		if o == "" || tx.Get(ix.bucket, refKey(o, id)) == nil {
			// An unscheduled container has no node entry; whether it had
			// one before only the stored record says.
			return false
		}
	}
	return tx.Get(t.bucket(), []byte(id)) != nil
}

func (t *table[T, P]) delete(tx KVTx, id string) error {
	old, had, err := t.oldIndexed(tx, id)
	if err != nil {
		return err
	}
	if !had {
		return &NotFoundError{Kind: t.kind, Key: id}
	}
	if err := t.unindex(tx, id, old, true, indexed{}); err != nil {
		return err
	}
	return tx.Delete(t.bucket(), []byte(id))
}

// oldIndexed reads the indexed fields of the stored record id, if any.
func (t *table[T, P]) oldIndexed(tx KVTx, id string) (indexed, bool, error) {
	var f indexed
	v := tx.Get(t.bucket(), []byte(id))
	if v == nil {
		return f, false, nil
	}
	if t.byName == "" && len(t.refs) == 0 {
		return f, true, nil
	}
	if err := json.Unmarshal(v, &f); err != nil {
		return f, true, fmt.Errorf("state: decode stored %s %q: %w", t.kind, id, err)
	}
	return f, true, nil
}

// unindex removes the index entries of the stored record (old) that the
// new one (now) no longer has.
func (t *table[T, P]) unindex(tx KVTx, id string, old indexed, had bool, now indexed) error {
	if !had {
		return nil
	}
	if t.byName != "" && old.Name != now.Name {
		if err := tx.Delete(t.byName, []byte(old.Name)); err != nil {
			return err
		}
	}
	for _, ix := range t.refs {
		if o := ix.owner(old); o != "" && o != ix.owner(now) {
			if err := tx.Delete(ix.bucket, refKey(o, id)); err != nil {
				return err
			}
		}
	}
	return nil
}

// only returns the one record of a kind the store holds at most one of
// (the cluster).
func (t *table[T, P]) only(tx KVTx) (P, error) {
	id, err := t.onlyID(tx)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, &NotFoundError{Kind: t.kind}
	}
	return t.get(tx, id)
}

// putOnly upserts the one record of its kind, refusing a record of another
// ID than the stored one's.
func (t *table[T, P]) putOnly(tx KVTx, r P) error {
	id, err := t.onlyID(tx)
	if err != nil {
		return err
	}
	if id != "" && id != r.RecordID() {
		return fmt.Errorf("%w: the %s's ID cannot change: this store holds %s %q, not %q; write the record with ID %q",
			types.ErrInvalid, t.kind, t.kind, id, r.RecordID(), id)
	}
	return t.put(tx, r)
}

// onlyID returns the ID of the one record of its kind, or "" when there is
// none, reading keys only.
func (t *table[T, P]) onlyID(tx KVTx) (string, error) {
	var ids []string
	err := tx.Scan(t.bucket(), nil, func(k, _ []byte) error {
		ids = append(ids, string(k))
		return nil
	})
	switch {
	case err != nil:
		return "", err
	case len(ids) > 1:
		return "", fmt.Errorf("state: bucket %s holds %d records (%s) where there may be one: the database was changed outside Warren; restore it from a backup",
			t.bucket(), len(ids), strings.Join(ids, ", "))
	case len(ids) == 1:
		return ids[0], nil
	}
	return "", nil
}

var (
	clusters   = &table[types.Cluster, *types.Cluster]{kind: types.KindCluster}
	nodes      = &table[types.Node, *types.Node]{kind: types.KindNode}
	services   = &table[types.Service, *types.Service]{kind: types.KindService, byName: ServicesByName}
	containers = &table[types.Container, *types.Container]{kind: types.KindContainer, refs: []refIndex{byService, byNode}}
	secrets    = &table[types.Secret, *types.Secret]{kind: types.KindSecret, byName: SecretsByName}
	volumes    = &table[types.Volume, *types.Volume]{kind: types.KindVolume, byName: VolumesByName}
	networks   = &table[types.Network, *types.Network]{kind: types.KindNetwork, byName: NetworksByName}

	byService = refIndex{bucket: ContainersByService, owner: func(f indexed) string { return f.ServiceID }}
	byNode    = refIndex{bucket: ContainersByNode, owner: func(f indexed) string { return f.NodeID }}
)
