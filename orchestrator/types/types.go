package types

import (
	"strconv"
	"time"
)

// NodeRole says whether a node takes part in the control plane.
type NodeRole string

// Node roles.
const (
	RoleManager NodeRole = "manager"
	RoleWorker  NodeRole = "worker"
)

// NodeStatus is a node's liveness as the managers see it.
type NodeStatus string

// Node statuses.
const (
	NodeReady    NodeStatus = "ready"
	NodeDown     NodeStatus = "down"
	NodeDraining NodeStatus = "draining"
	NodeUnknown  NodeStatus = "unknown"
)

// NodeAvailability is the operator's wish for a node, separate from its
// liveness, as in Swarm: only active nodes receive new tasks, and a drained
// node's tasks move away. Added in schema version 2.
type NodeAvailability string

// Node availabilities.
const (
	NodeActive NodeAvailability = "active"
	NodePause  NodeAvailability = "pause"
	NodeDrain  NodeAvailability = "drain"
)

// ServiceMode says how many tasks a service wants.
type ServiceMode string

// Service modes.
const (
	ModeReplicated ServiceMode = "replicated"
	ModeGlobal     ServiceMode = "global"
)

// DeployStrategy is how a service update replaces its tasks.
type DeployStrategy string

// Deploy strategies.
const (
	DeployRolling   DeployStrategy = "rolling"
	DeployBlueGreen DeployStrategy = "blue-green"
	DeployCanary    DeployStrategy = "canary"
)

// ContainerState is a task's state, desired or actual.
type ContainerState string

// Container states.
const (
	ContainerPending  ContainerState = "pending"
	ContainerRunning  ContainerState = "running"
	ContainerFailed   ContainerState = "failed"
	ContainerComplete ContainerState = "complete"
	ContainerShutdown ContainerState = "shutdown"
)

// HealthStatus is the outcome of a container's health checks.
type HealthStatus string

// Health statuses.
const (
	HealthHealthy   HealthStatus = "healthy"
	HealthUnhealthy HealthStatus = "unhealthy"
	HealthUnknown   HealthStatus = "unknown"
)

// RestartCondition says when a stopped task is restarted.
type RestartCondition string

// Restart conditions.
const (
	RestartNone      RestartCondition = "none"
	RestartOnFailure RestartCondition = "on-failure"
	RestartAlways    RestartCondition = "always"
)

// FailureAction is what a rolling update does when a new task fails.
type FailureAction string

// Failure actions.
const (
	FailurePause    FailureAction = "pause"
	FailureContinue FailureAction = "continue"
	FailureRollback FailureAction = "rollback"
)

// Protocol is a published port's transport protocol.
type Protocol string

// Protocols.
const (
	ProtocolTCP Protocol = "tcp"
	ProtocolUDP Protocol = "udp"
)

// PublishMode says where a published port listens: on every node (ingress)
// or only on the node running the task (host).
type PublishMode string

// Publish modes.
const (
	PublishIngress PublishMode = "ingress"
	PublishHost    PublishMode = "host"
)

// HealthCheckType is the kind of probe a health check runs.
type HealthCheckType string

// Health check types.
const (
	HealthCheckHTTP HealthCheckType = "http"
	HealthCheckTCP  HealthCheckType = "tcp"
	HealthCheckExec HealthCheckType = "exec"
)

// Node is a machine in the cluster, manager or worker.
type Node struct {
	SchemaVersion int `json:",omitempty"`
	ID            string
	Role          NodeRole
	Address       string
	OverlayIP     IP
	Hostname      string
	Labels        map[string]string
	Resources     *NodeResources
	Status        NodeStatus
	Availability  NodeAvailability `json:",omitempty"`
	LastHeartbeat time.Time
	CreatedAt     time.Time
}

// NodeResources is a node's capacity and what is allocated of it.
type NodeResources struct {
	CPUCores        int
	MemoryBytes     int64
	DiskBytes       int64
	CPUAllocated    float64
	MemoryAllocated int64
	DiskAllocated   int64
}

// Service is what a user asked to run.
type Service struct {
	SchemaVersion int `json:",omitempty"`
	ID            string
	Name          string
	Image         string
	// Command replaces the image's entrypoint and Args its command
	// (Docker's ENTRYPOINT and CMD); empty keeps the image's. WorkingDir
	// and User ("name", "uid" or "uid:gid") override the image's too.
	Command        []string `json:",omitempty"`
	Args           []string `json:",omitempty"`
	WorkingDir     string   `json:",omitempty"`
	User           string   `json:",omitempty"`
	Replicas       int
	Mode           ServiceMode
	DeployStrategy DeployStrategy
	UpdateConfig   *UpdateConfig
	Env            []string
	Ports          []*PortMapping
	Networks       []string // network IDs
	Secrets        []string // secret IDs
	Volumes        []*VolumeMount
	Labels         map[string]string
	HealthCheck    *HealthCheck
	RestartPolicy  *RestartPolicy
	Resources      *ResourceRequirements
	StopTimeout    int `json:",omitempty"` // seconds; 0 means the default
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// Constraints limit the nodes the service's tasks may run on, as in
	// Swarm: "node.labels.KEY==VALUE", "node.labels.KEY!=VALUE",
	// "node.hostname==NAME", "node.role==manager|worker", "node.id==ID".
	Constraints []string `json:",omitempty"`
	// ForceUpdate is raised by `service update --force-recreate`: tasks
	// made under a lower value are replaced, as on any change of the
	// task's spec (Swarm's ForceUpdate).
	ForceUpdate uint64 `json:",omitempty"`
}

// UpdateConfig tunes how a service update rolls out.
type UpdateConfig struct {
	Parallelism   int
	Delay         time.Duration
	FailureAction FailureAction
	CanaryWeight  int // percent of traffic for canary deployments
}

// PortMapping publishes a container port on the nodes.
type PortMapping struct {
	ContainerPort int
	HostPort      int // 0: not published on the host
	Protocol      Protocol
	PublishMode   PublishMode `json:",omitempty"`
}

// VolumeMount mounts a named volume into a container.
type VolumeMount struct {
	Source   string // volume name
	Target   string // absolute path in the container
	ReadOnly bool   `json:",omitempty"`
}

// HealthCheck is a probe run against each task of a service.
type HealthCheck struct {
	Type        HealthCheckType
	Path        string   `json:",omitempty"` // http: request path
	Port        int      `json:",omitempty"` // http, tcp: container port
	Command     []string `json:",omitempty"` // exec: argv run in the container
	Interval    time.Duration
	Timeout     time.Duration
	Retries     int
	StartPeriod time.Duration `json:",omitempty"`
}

// RestartPolicy says whether and how often a stopped task is restarted.
type RestartPolicy struct {
	Condition   RestartCondition
	MaxAttempts int // 0: no limit
	Delay       time.Duration
}

// ResourceRequirements are a task's CPU and memory limits and reservations.
type ResourceRequirements struct {
	CPULimit          float64 `json:",omitempty"` // cores
	MemoryLimit       int64   `json:",omitempty"` // bytes
	CPUReservation    float64 `json:",omitempty"`
	MemoryReservation int64   `json:",omitempty"`
}

// Container is one task of a service: where it should run and how it does.
type Container struct {
	SchemaVersion int `json:",omitempty"`
	ID            string
	ServiceID     string
	ServiceName   string
	NodeID        string // empty while unscheduled
	ContainerID   string // the runtime's ID
	DesiredState  ContainerState
	ActualState   ContainerState
	HealthStatus  HealthStatus `json:",omitempty"`
	Image         string
	// Command replaces the image's entrypoint and Args its command
	// (Docker's ENTRYPOINT and CMD); empty keeps the image's. WorkingDir
	// and User ("name", "uid" or "uid:gid") override the image's too.
	Command    []string `json:",omitempty"`
	Args       []string `json:",omitempty"`
	WorkingDir string   `json:",omitempty"`
	User       string   `json:",omitempty"`
	Env        []string
	Ports      []*PortMapping
	Mounts     []*VolumeMount
	// Secrets are the IDs of the secrets the task's container gets at
	// /run/secrets/NAME (its service's, when the task was made).
	Secrets []string `json:",omitempty"`
	// SecretVersions is the version of each secret (by ID) the task was
	// made with; a secret missing from it is at version 1.
	SecretVersions map[string]int `json:",omitempty"`
	// ForceUpdate is its service's ForceUpdate when the task was made.
	ForceUpdate   uint64 `json:",omitempty"`
	HealthCheck   *HealthCheck
	RestartPolicy *RestartPolicy
	Resources     *ResourceRequirements
	StopTimeout   int `json:",omitempty"`
	CreatedAt     time.Time
	StartedAt     time.Time
	FinishedAt    time.Time
	ExitCode      int
	Error         string
	// Slot is the replica this task fills (1..Replicas) in a replicated
	// service; a global service's tasks are told apart by NodeID. A task
	// that replaces another keeps its slot.
	Slot int `json:",omitempty"`
	// Attempt counts the restarts in this slot, against
	// RestartPolicy.MaxAttempts; a reschedule away from a lost node is not
	// a restart.
	Attempt int `json:",omitempty"`
}

// Secret is sensitive data; Data holds only ciphertext.
type Secret struct {
	SchemaVersion int `json:",omitempty"`
	ID            string
	Name          string
	Data          []byte // encrypted with AES-256-GCM
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// Version is Data's version: `secret update` makes the next one. 0
	// and 1 both mean the first.
	Version int `json:",omitempty"`
	// Previous are the older versions some task still uses (a task keeps
	// the version it was made with), oldest first; a version no task
	// uses is dropped.
	Previous []*SecretVersion `json:",omitempty"`
}

// SecretVersion is an older value of a secret, still sealed.
type SecretVersion struct {
	Version   int
	Data      []byte
	CreatedAt time.Time
}

// CurrentVersion is the version of s.Data (1 for a secret never updated).
func (s *Secret) CurrentVersion() int { return max(s.Version, 1) }

// VersionData returns the sealed value of version v, and whether s still
// has it.
func (s *Secret) VersionData(v int) ([]byte, bool) {
	if max(v, 1) == s.CurrentVersion() {
		return s.Data, true
	}
	for _, p := range s.Previous {
		if p.Version == v {
			return p.Data, true
		}
	}
	return nil, false
}

// SealedFor is what version v of secret id is sealed for (the associated
// data of its encryption), so that one version's ciphertext does not open
// as another's: the ID alone for the first version, as before versions
// existed, and "ID@vN" after.
func SealedFor(id string, v int) string {
	if v <= 1 {
		return id
	}
	return id + "@v" + strconv.Itoa(v)
}

// SecretVersionOf is the version of secret id task t was made with.
func (t *Container) SecretVersionOf(id string) int { return max(t.SecretVersions[id], 1) }

// Volume is persistent storage; a local volume belongs to one node.
type Volume struct {
	SchemaVersion int `json:",omitempty"`
	ID            string
	Name          string
	Driver        string
	NodeID        string // node affinity of a local volume; empty until placed
	MountPath     string // host path
	Options       map[string]string
	CreatedAt     time.Time
	Labels        map[string]string `json:",omitempty"`
	// Size is the bytes its data takes on its node, as the node last
	// measured it (at SizeAt; zero until then).
	Size   int64     `json:",omitempty"`
	SizeAt time.Time `json:",omitzero"`
}

// Network is an overlay network services attach to.
type Network struct {
	SchemaVersion int `json:",omitempty"`
	ID            string
	Name          string
	Subnet        string
	Gateway       string
	Driver        string
}

// EncryptionSaltSize is the length of Cluster.EncryptionSalt in bytes.
const EncryptionSaltSize = 32

// Cluster is the cluster's own record; the store holds at most one. It
// carries what every manager must agree on: the CA that nodes trust, the
// current join tokens, and the salt of the key that encrypts secrets.
type Cluster struct {
	SchemaVersion int `json:",omitempty"`
	ID            string
	CreatedAt     time.Time
	// CACert is the cluster CA's certificate, PEM. Only the certificate:
	// the CA's key stays on the managers' disks, out of the replicated
	// state.
	CACert []byte
	// CADigest is "sha256:<64 hex>" of CACert's certificate (DER), which
	// join tokens carry so a joining node can pin the CA.
	CADigest string
	// WorkerToken and ManagerToken are the current join tokens; the core
	// treats them as opaque strings.
	WorkerToken  string
	ManagerToken string
	// EncryptionSalt is the salt the key that encrypts secrets is derived
	// with: EncryptionSaltSize random bytes.
	EncryptionSalt []byte
	// DataKey is the key that encrypts secrets, wrapped by the key derived
	// from the cluster ID and EncryptionSalt (orchestrator/secrets); empty
	// until the first secret is made.
	DataKey []byte `json:",omitempty"`
	// PreviousDataKey is the data key a `secret rotate-key` in progress
	// replaces, wrapped as DataKey: secrets not yet sealed again open
	// with it. Empty once every secret is under DataKey.
	PreviousDataKey []byte `json:",omitempty"`
	// Autolock: the key-encryption key is not derived from the cluster
	// ID but is a random key printed once at init (the unlock key), kept
	// out of the state; a restarted manager serves no secret until
	// `warren cluster unlock` gives it the key.
	Autolock bool `json:",omitempty"`
}
