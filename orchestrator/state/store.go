package state

import (
	"errors"
	"fmt"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Reader reads records. Lists are sorted by ID.
type Reader interface {
	// Has reports whether a record of kind with this ID exists, without
	// decoding it: the state machine's existence checks on every create
	// and update.
	Has(kind types.Kind, id string) (bool, error)

	GetNode(id string) (*types.Node, error)
	ListNodes() ([]*types.Node, error)

	GetService(id string) (*types.Service, error)
	GetServiceByName(name string) (*types.Service, error)
	ListServices() ([]*types.Service, error)

	GetContainer(id string) (*types.Container, error)
	ListContainers() ([]*types.Container, error)
	ListContainersByService(serviceID string) ([]*types.Container, error)
	ListContainersByNode(nodeID string) ([]*types.Container, error)

	GetSecret(id string) (*types.Secret, error)
	GetSecretByName(name string) (*types.Secret, error)
	ListSecrets() ([]*types.Secret, error)

	GetVolume(id string) (*types.Volume, error)
	GetVolumeByName(name string) (*types.Volume, error)
	ListVolumes() ([]*types.Volume, error)

	GetNetwork(id string) (*types.Network, error)
	GetNetworkByName(name string) (*types.Network, error)
	ListNetworks() ([]*types.Network, error)

	// GetCluster returns the cluster's record, or a NotFoundError when
	// the cluster has none yet.
	GetCluster() (*types.Cluster, error)
}

// Writer changes records. Update* is an upsert: it creates the record or
// replaces the one with the same ID. An invalid record is refused with an
// error wrapping types.ErrInvalid, a name used by another record of the same
// kind with ErrNameTaken, and deleting a missing record with ErrNotFound;
// a refused write changes nothing.
type Writer interface {
	UpdateNode(n *types.Node) error
	DeleteNode(id string) error
	UpdateService(s *types.Service) error
	DeleteService(id string) error
	UpdateContainer(c *types.Container) error
	DeleteContainer(id string) error
	UpdateSecret(s *types.Secret) error
	DeleteSecret(id string) error
	UpdateVolume(v *types.Volume) error
	DeleteVolume(id string) error
	UpdateNetwork(n *types.Network) error
	DeleteNetwork(id string) error
	// UpdateCluster creates the cluster's record or replaces it. There is
	// only one: a record whose ID differs from the stored one's is refused
	// with an error wrapping types.ErrInvalid.
	UpdateCluster(c *types.Cluster) error
}

// Tx is a read-write transaction.
type Tx interface {
	Reader
	Writer
}

// Store holds the cluster state. Each Reader and Writer method runs in a
// transaction of its own; View and Update group several.
type Store interface {
	Reader
	Writer
	// View runs fn with a consistent, read-only view of the state: fn sees
	// none of the writes committed while it runs. fn should not wait for a
	// write to finish, as a backend may need the view to end first.
	View(fn func(Reader) error) error
	// Update runs fn in one read-write transaction: if fn returns nil all
	// of its writes are committed together, otherwise none are.
	Update(fn func(Tx) error) error
	// Close releases the store; writes acknowledged before it are durable.
	Close() error
}

var (
	// ErrNotFound is wrapped by the errors for missing records.
	ErrNotFound = errors.New("state: not found")
	// ErrNameTaken is wrapped by the errors for a name already in use.
	ErrNameTaken = errors.New("state: name already in use")
)

// NotFoundError says which record is missing.
type NotFoundError struct {
	Kind   types.Kind
	Key    string
	ByName bool
}

func (e *NotFoundError) Error() string {
	if e.Kind == types.KindCluster {
		// The one record of its kind, looked up without a key.
		return "state: no cluster record yet: initialize the cluster first"
	}
	if e.ByName {
		return fmt.Sprintf("state: no %s named %q", e.Kind, e.Key)
	}
	return fmt.Sprintf("state: no %s with ID %q", e.Kind, e.Key)
}

// Unwrap lets errors.Is(err, ErrNotFound) match.
func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// NameTakenError says which record already holds a name.
type NameTakenError struct {
	Kind  types.Kind
	Name  string
	Owner string // ID of the record holding the name
}

func (e *NameTakenError) Error() string {
	return fmt.Sprintf("state: %s name %q is already used by %s: choose another name, or update or delete %s",
		e.Kind, e.Name, e.Owner, e.Owner)
}

// Unwrap lets errors.Is(err, ErrNameTaken) match.
func (e *NameTakenError) Unwrap() error { return ErrNameTaken }
