// The per-kind methods of txn and store: thin, typed entry points to the
// generic tables of typed.go.

package state

import "github.com/warren-orchestrator/warren/orchestrator/types"

// GetNode implements Reader.
func (t txn) GetNode(id string) (*types.Node, error) { return nodes.get(t.kv, id) }

// ListNodes implements Reader.
func (t txn) ListNodes() ([]*types.Node, error) { return nodes.list(t.kv) }

// UpdateNode implements Writer.
func (t txn) UpdateNode(r *types.Node) error { return nodes.put(t.kv, r) }

// DeleteNode implements Writer.
func (t txn) DeleteNode(id string) error { return nodes.delete(t.kv, id) }

// GetNode implements Reader.
func (s *store) GetNode(id string) (*types.Node, error) {
	return read(s, func(t txn) (*types.Node, error) { return t.GetNode(id) })
}

// ListNodes implements Reader.
func (s *store) ListNodes() ([]*types.Node, error) { return read(s, txn.ListNodes) }

// UpdateNode implements Writer.
func (s *store) UpdateNode(r *types.Node) error {
	return s.writeOne(func(t txn) error { return t.UpdateNode(r) })
}

// DeleteNode implements Writer.
func (s *store) DeleteNode(id string) error {
	return s.writeOne(func(t txn) error { return t.DeleteNode(id) })
}

// GetService implements Reader.
func (t txn) GetService(id string) (*types.Service, error) { return services.get(t.kv, id) }

// ListServices implements Reader.
func (t txn) ListServices() ([]*types.Service, error) { return services.list(t.kv) }

// UpdateService implements Writer.
func (t txn) UpdateService(r *types.Service) error { return services.put(t.kv, r) }

// DeleteService implements Writer.
func (t txn) DeleteService(id string) error { return services.delete(t.kv, id) }

// GetService implements Reader.
func (s *store) GetService(id string) (*types.Service, error) {
	return read(s, func(t txn) (*types.Service, error) { return t.GetService(id) })
}

// ListServices implements Reader.
func (s *store) ListServices() ([]*types.Service, error) { return read(s, txn.ListServices) }

// UpdateService implements Writer.
func (s *store) UpdateService(r *types.Service) error {
	return s.writeOne(func(t txn) error { return t.UpdateService(r) })
}

// DeleteService implements Writer.
func (s *store) DeleteService(id string) error {
	return s.writeOne(func(t txn) error { return t.DeleteService(id) })
}

// GetServiceByName implements Reader.
func (t txn) GetServiceByName(name string) (*types.Service, error) {
	return services.getByName(t.kv, name)
}

// GetServiceByName implements Reader.
func (s *store) GetServiceByName(name string) (*types.Service, error) {
	return read(s, func(t txn) (*types.Service, error) { return t.GetServiceByName(name) })
}

// GetContainer implements Reader.
func (t txn) GetContainer(id string) (*types.Container, error) { return containers.get(t.kv, id) }

// ListContainers implements Reader.
func (t txn) ListContainers() ([]*types.Container, error) { return containers.list(t.kv) }

// UpdateContainer implements Writer.
func (t txn) UpdateContainer(r *types.Container) error { return containers.put(t.kv, r) }

// DeleteContainer implements Writer.
func (t txn) DeleteContainer(id string) error { return containers.delete(t.kv, id) }

// GetContainer implements Reader.
func (s *store) GetContainer(id string) (*types.Container, error) {
	return read(s, func(t txn) (*types.Container, error) { return t.GetContainer(id) })
}

// ListContainers implements Reader.
func (s *store) ListContainers() ([]*types.Container, error) { return read(s, txn.ListContainers) }

// UpdateContainer implements Writer.
func (s *store) UpdateContainer(r *types.Container) error {
	return s.writeOne(func(t txn) error { return t.UpdateContainer(r) })
}

// DeleteContainer implements Writer.
func (s *store) DeleteContainer(id string) error {
	return s.writeOne(func(t txn) error { return t.DeleteContainer(id) })
}

// GetSecret implements Reader.
func (t txn) GetSecret(id string) (*types.Secret, error) { return secrets.get(t.kv, id) }

// ListSecrets implements Reader.
func (t txn) ListSecrets() ([]*types.Secret, error) { return secrets.list(t.kv) }

// UpdateSecret implements Writer.
func (t txn) UpdateSecret(r *types.Secret) error { return secrets.put(t.kv, r) }

// DeleteSecret implements Writer.
func (t txn) DeleteSecret(id string) error { return secrets.delete(t.kv, id) }

// GetSecret implements Reader.
func (s *store) GetSecret(id string) (*types.Secret, error) {
	return read(s, func(t txn) (*types.Secret, error) { return t.GetSecret(id) })
}

// ListSecrets implements Reader.
func (s *store) ListSecrets() ([]*types.Secret, error) { return read(s, txn.ListSecrets) }

// UpdateSecret implements Writer.
func (s *store) UpdateSecret(r *types.Secret) error {
	return s.writeOne(func(t txn) error { return t.UpdateSecret(r) })
}

// DeleteSecret implements Writer.
func (s *store) DeleteSecret(id string) error {
	return s.writeOne(func(t txn) error { return t.DeleteSecret(id) })
}

// GetSecretByName implements Reader.
func (t txn) GetSecretByName(name string) (*types.Secret, error) {
	return secrets.getByName(t.kv, name)
}

// GetSecretByName implements Reader.
func (s *store) GetSecretByName(name string) (*types.Secret, error) {
	return read(s, func(t txn) (*types.Secret, error) { return t.GetSecretByName(name) })
}

// GetVolume implements Reader.
func (t txn) GetVolume(id string) (*types.Volume, error) { return volumes.get(t.kv, id) }

// ListVolumes implements Reader.
func (t txn) ListVolumes() ([]*types.Volume, error) { return volumes.list(t.kv) }

// UpdateVolume implements Writer.
func (t txn) UpdateVolume(r *types.Volume) error { return volumes.put(t.kv, r) }

// DeleteVolume implements Writer.
func (t txn) DeleteVolume(id string) error { return volumes.delete(t.kv, id) }

// GetVolume implements Reader.
func (s *store) GetVolume(id string) (*types.Volume, error) {
	return read(s, func(t txn) (*types.Volume, error) { return t.GetVolume(id) })
}

// ListVolumes implements Reader.
func (s *store) ListVolumes() ([]*types.Volume, error) { return read(s, txn.ListVolumes) }

// UpdateVolume implements Writer.
func (s *store) UpdateVolume(r *types.Volume) error {
	return s.writeOne(func(t txn) error { return t.UpdateVolume(r) })
}

// DeleteVolume implements Writer.
func (s *store) DeleteVolume(id string) error {
	return s.writeOne(func(t txn) error { return t.DeleteVolume(id) })
}

// GetVolumeByName implements Reader.
func (t txn) GetVolumeByName(name string) (*types.Volume, error) {
	return volumes.getByName(t.kv, name)
}

// GetVolumeByName implements Reader.
func (s *store) GetVolumeByName(name string) (*types.Volume, error) {
	return read(s, func(t txn) (*types.Volume, error) { return t.GetVolumeByName(name) })
}

// GetNetwork implements Reader.
func (t txn) GetNetwork(id string) (*types.Network, error) { return networks.get(t.kv, id) }

// ListNetworks implements Reader.
func (t txn) ListNetworks() ([]*types.Network, error) { return networks.list(t.kv) }

// UpdateNetwork implements Writer.
func (t txn) UpdateNetwork(r *types.Network) error { return networks.put(t.kv, r) }

// DeleteNetwork implements Writer.
func (t txn) DeleteNetwork(id string) error { return networks.delete(t.kv, id) }

// GetNetwork implements Reader.
func (s *store) GetNetwork(id string) (*types.Network, error) {
	return read(s, func(t txn) (*types.Network, error) { return t.GetNetwork(id) })
}

// ListNetworks implements Reader.
func (s *store) ListNetworks() ([]*types.Network, error) { return read(s, txn.ListNetworks) }

// UpdateNetwork implements Writer.
func (s *store) UpdateNetwork(r *types.Network) error {
	return s.writeOne(func(t txn) error { return t.UpdateNetwork(r) })
}

// DeleteNetwork implements Writer.
func (s *store) DeleteNetwork(id string) error {
	return s.writeOne(func(t txn) error { return t.DeleteNetwork(id) })
}

// GetNetworkByName implements Reader.
func (t txn) GetNetworkByName(name string) (*types.Network, error) {
	return networks.getByName(t.kv, name)
}

// GetNetworkByName implements Reader.
func (s *store) GetNetworkByName(name string) (*types.Network, error) {
	return read(s, func(t txn) (*types.Network, error) { return t.GetNetworkByName(name) })
}

// GetCluster implements Reader.
func (t txn) GetCluster() (*types.Cluster, error) { return clusters.only(t.kv) }

// UpdateCluster implements Writer.
func (t txn) UpdateCluster(r *types.Cluster) error { return clusters.putOnly(t.kv, r) }

// GetCluster implements Reader.
func (s *store) GetCluster() (*types.Cluster, error) { return read(s, txn.GetCluster) }

// UpdateCluster implements Writer.
func (s *store) UpdateCluster(r *types.Cluster) error {
	return s.writeOne(func(t txn) error { return t.UpdateCluster(r) })
}

// Has implements Reader.
func (t txn) Has(kind types.Kind, id string) (bool, error) {
	return t.kv.Get(kind.Bucket(), []byte(id)) != nil, nil
}

// Has implements Reader.
func (s *store) Has(kind types.Kind, id string) (bool, error) {
	return read(s, func(t txn) (bool, error) { return t.Has(kind, id) })
}
