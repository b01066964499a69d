// Package typestest builds valid records for tests and benchmarks, so each
// test changes only the fields it is about.
package typestest

import (
	"bytes"
	"strings"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Epoch is the creation time of every record made here.
var Epoch = time.Date(2025, 10, 10, 9, 0, 0, 0, time.UTC)

// Node returns a ready, active worker.
func Node(id string) *types.Node {
	return &types.Node{
		ID:       id,
		Role:     types.RoleWorker,
		Address:  "192.168.1.10",
		Hostname: id,
		Labels:   map[string]string{"zone": "a"},
		Resources: &types.NodeResources{
			CPUCores: 8, MemoryBytes: 16 << 30, DiskBytes: 500 << 30,
		},
		Status:        types.NodeReady,
		Availability:  types.NodeActive,
		LastHeartbeat: Epoch,
		CreatedAt:     Epoch,
	}
}

// Service returns a replicated service of 3 replicas.
func Service(id, name string) *types.Service {
	return &types.Service{
		ID:             id,
		Name:           name,
		Image:          "nginx:1.27",
		Replicas:       3,
		Mode:           types.ModeReplicated,
		DeployStrategy: types.DeployRolling,
		UpdateConfig:   &types.UpdateConfig{Parallelism: 1, Delay: 5 * time.Second, FailureAction: types.FailureRollback},
		Env:            []string{"ENV=production"},
		Ports:          []*types.PortMapping{{ContainerPort: 80, HostPort: 8080, Protocol: types.ProtocolTCP}},
		Labels:         map[string]string{"app": name},
		RestartPolicy:  &types.RestartPolicy{Condition: types.RestartAlways, MaxAttempts: 3, Delay: 5 * time.Second},
		CreatedAt:      Epoch,
		UpdatedAt:      Epoch,
	}
}

// LargeService returns a service whose JSON is about size bytes, padded
// with environment variables, as a realistic large record.
func LargeService(id, name string, size int) *types.Service {
	s := Service(id, name)
	for n := 600; n < size; n += 100 {
		s.Env = append(s.Env, "PAD_"+strings.Repeat("X", 89)+"=1")
	}
	return s
}

// Container returns a task of service serviceID, running on nodeID
// (unscheduled when nodeID is empty).
func Container(id, serviceID, nodeID string) *types.Container {
	return &types.Container{
		ID:            id,
		ServiceID:     serviceID,
		ServiceName:   "web",
		NodeID:        nodeID,
		DesiredState:  types.ContainerRunning,
		ActualState:   types.ContainerPending,
		Image:         "nginx:1.27",
		Env:           []string{"ENV=production"},
		RestartPolicy: &types.RestartPolicy{Condition: types.RestartAlways},
		CreatedAt:     Epoch,
	}
}

// Secret returns a secret whose Data stands in for ciphertext.
func Secret(id, name string) *types.Secret {
	return &types.Secret{ID: id, Name: name, Data: []byte("not-really-ciphertext"), CreatedAt: Epoch, UpdatedAt: Epoch}
}

// Volume returns a local volume pinned to nodeID (unplaced when empty).
func Volume(id, name, nodeID string) *types.Volume {
	return &types.Volume{
		ID: id, Name: name, Driver: "local", NodeID: nodeID,
		MountPath: "/var/lib/warren/volumes/" + name,
		Options:   map[string]string{}, CreatedAt: Epoch,
	}
}

// Network returns a WireGuard network on 10.0.1.0/24.
func Network(id, name string) *types.Network {
	return &types.Network{ID: id, Name: name, Subnet: "10.0.1.0/24", Gateway: "10.0.1.1", Driver: "wireguard"}
}

// CACert is a self-signed CA certificate (Ed25519, CN warren-test-ca, valid
// 2025-2125), PEM, for cluster records; its key was thrown away.
var CACert = []byte(`-----BEGIN CERTIFICATE-----
MIIBJDCB16ADAgECAgEBMAUGAytlcDAZMRcwFQYDVQQDEw53YXJyZW4tdGVzdC1j
YTAgFw0yNTEwMTAwMDAwMDBaGA8yMTI1MTAxMDAwMDAwMFowGTEXMBUGA1UEAxMO
d2FycmVuLXRlc3QtY2EwKjAFBgMrZXADIQADoQe/884Qvh1w3RjnS8CZZ+TWMJul
DV8d3IZkElUxuKNCMEAwDgYDVR0PAQH/BAQDAgEGMA8GA1UdEwEB/wQFMAMBAf8w
HQYDVR0OBBYEFFZHWqdUY0dMAoXfXb8ryrc9plE1MAUGAytlcANBALS1WOmbXraJ
GOab6NGIQWz1HHzEMFF7vka/sG20JGgMxH5NS0Rj3mF0EDI08yw8u5GC7LI4SyYu
qLC9sDLDcgc=
-----END CERTIFICATE-----
`)

// CADigest is the digest of CACert's certificate (DER).
const CADigest = "sha256:0bf7ec78e7f88e65302f3fce41816c8275161cc0349ccd192d8128b2f1df3aaa"

// Cluster returns a valid cluster record with the CA above.
func Cluster(id string) *types.Cluster {
	return &types.Cluster{
		ID:             id,
		CreatedAt:      Epoch,
		CACert:         bytes.Clone(CACert),
		CADigest:       CADigest,
		WorkerToken:    "worker-token-" + id,
		ManagerToken:   "manager-token-" + id,
		EncryptionSalt: bytes.Repeat([]byte{0x5a}, types.EncryptionSaltSize),
	}
}
