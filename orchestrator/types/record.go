package types

import (
	"encoding/json"
	"errors"
	"fmt"
)

// SchemaVersion is the version of the records this binary writes. Records
// without a SchemaVersion field are version 1: the format of the original
// schema document (docs/schema.md).
const SchemaVersion = 2

// ErrNewerSchema is returned for a record written by a newer Warren.
var ErrNewerSchema = errors.New("types: record has a newer schema version")

// Kind names a record type.
type Kind string

// Record kinds.
const (
	KindNode      Kind = "node"
	KindService   Kind = "service"
	KindContainer Kind = "container"
	KindSecret    Kind = "secret"
	KindVolume    Kind = "volume"
	KindNetwork   Kind = "network"
	KindCluster   Kind = "cluster"
)

// Kinds lists every record kind: the six of the schema document in its
// order, then the kinds Warren added.
var Kinds = []Kind{KindNode, KindService, KindContainer, KindSecret, KindVolume, KindNetwork, KindCluster}

// Bucket is the name of the BoltDB bucket that holds records of this kind.
func (k Kind) Bucket() string { return string(k) + "s" }

// Record is implemented by the record types, one per Kind.
type Record interface {
	// Kind is the record's type.
	Kind() Kind
	// RecordID is the record's primary key.
	RecordID() string
	// RecordName is the record's unique, user-facing name; "" for kinds
	// whose names are not unique (nodes, containers) or that have none
	// (the cluster).
	RecordName() string
	// Validate reports every problem with the record, or nil.
	Validate() error
	version() *int
}

// RecordPtr is a pointer to one of the record types; it lets generic code
// allocate and copy records.
type RecordPtr[T any] interface {
	*T
	Record
}

// Encode validates r and returns its JSON, stamped with the current
// SchemaVersion. r itself is not modified.
func Encode[T any, P RecordPtr[T]](r P) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	c := *r
	*P(&c).version() = SchemaVersion
	return json.Marshal(&c)
}

// Decode parses a stored record and migrates it to the current
// SchemaVersion.
func Decode[T any, P RecordPtr[T]](data []byte) (P, error) {
	r := P(new(T))
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("types: decode %s: %w", r.Kind(), err)
	}
	if err := migrate(r); err != nil {
		return nil, err
	}
	return r, nil
}

// migrations[kind][v] turns a record of version v into version v+1.
// Cluster records first appeared at version 2, in their current format.
var migrations = map[Kind]map[int]func(Record){
	KindNode: {1: migrateNodeV1},
}

func migrate(r Record) error {
	v := r.version()
	if *v == 0 {
		*v = 1
	}
	if *v > SchemaVersion {
		return fmt.Errorf("%w: %s %q is version %d, this binary knows up to %d: upgrade warren",
			ErrNewerSchema, r.Kind(), r.RecordID(), *v, SchemaVersion)
	}
	for ; *v < SchemaVersion; *v++ {
		if m := migrations[r.Kind()][*v]; m != nil {
			m(r)
		}
	}
	return nil
}

// migrateNodeV1 adds Availability. Version 1 had no separate availability:
// an operator's drain was recorded as the status "draining".
func migrateNodeV1(r Record) {
	n := r.(*Node)
	if n.Status == NodeDraining {
		n.Availability = NodeDrain
	} else {
		n.Availability = NodeActive
	}
}

// Kind implements Record.
func (*Node) Kind() Kind { return KindNode }

// Kind implements Record.
func (*Service) Kind() Kind { return KindService }

// Kind implements Record.
func (*Container) Kind() Kind { return KindContainer }

// Kind implements Record.
func (*Secret) Kind() Kind { return KindSecret }

// Kind implements Record.
func (*Volume) Kind() Kind { return KindVolume }

// Kind implements Record.
func (*Network) Kind() Kind { return KindNetwork }

// Kind implements Record.
func (*Cluster) Kind() Kind { return KindCluster }

// RecordID implements Record.
func (n *Node) RecordID() string { return n.ID }

// RecordID implements Record.
func (s *Service) RecordID() string { return s.ID }

// RecordID implements Record.
func (c *Container) RecordID() string { return c.ID }

// RecordID implements Record.
func (s *Secret) RecordID() string { return s.ID }

// RecordID implements Record.
func (v *Volume) RecordID() string { return v.ID }

// RecordID implements Record.
func (n *Network) RecordID() string { return n.ID }

// RecordID implements Record.
func (c *Cluster) RecordID() string { return c.ID }

// RecordName implements Record; node hostnames need not be unique.
func (*Node) RecordName() string { return "" }

// RecordName implements Record.
func (s *Service) RecordName() string { return s.Name }

// RecordName implements Record; containers have no name of their own.
func (*Container) RecordName() string { return "" }

// RecordName implements Record.
func (s *Secret) RecordName() string { return s.Name }

// RecordName implements Record.
func (v *Volume) RecordName() string { return v.Name }

// RecordName implements Record.
func (n *Network) RecordName() string { return n.Name }

// RecordName implements Record; the cluster is the only one of its kind
// and has no name.
func (*Cluster) RecordName() string { return "" }

func (n *Node) version() *int      { return &n.SchemaVersion }
func (s *Service) version() *int   { return &s.SchemaVersion }
func (c *Container) version() *int { return &c.SchemaVersion }
func (s *Secret) version() *int    { return &s.SchemaVersion }
func (v *Volume) version() *int    { return &v.SchemaVersion }
func (n *Network) version() *int   { return &n.SchemaVersion }
func (c *Cluster) version() *int   { return &c.SchemaVersion }
