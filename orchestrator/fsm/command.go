package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Version is the format of encoded commands. A replica refuses commands of
// a newer format instead of misreading them.
const Version byte = 1

// Kind identifies a command type in the log. Values are never reused.
type Kind uint8

// Command kinds.
const (
	KindCreateService Kind = iota + 1
	KindUpdateService
	KindDeleteService
	KindCreateVolume
	KindUpdateVolume
	KindDeleteVolume
	KindCreateSecret
	KindUpdateSecret
	KindDeleteSecret
	KindCreateNetwork
	KindUpdateNetwork
	KindDeleteNetwork
	KindRegisterNode
	KindUpdateNode
	KindSetNodeStatus
	KindReportTasks
	KindPlanTasks
	KindSetCluster
	KindDeleteNode
	KindBatch
	KindReportVolumes
)

// kinds registers each command type under its kind: its name for messages
// and a constructor to decode into.
var kinds = map[Kind]struct {
	name string
	new  func() Command
}{
	KindCreateService: {"CreateService", func() Command { return &CreateService{} }},
	KindUpdateService: {"UpdateService", func() Command { return &UpdateService{} }},
	KindDeleteService: {"DeleteService", func() Command { return &DeleteService{} }},
	KindCreateVolume:  {"CreateVolume", func() Command { return &CreateVolume{} }},
	KindUpdateVolume:  {"UpdateVolume", func() Command { return &UpdateVolume{} }},
	KindDeleteVolume:  {"DeleteVolume", func() Command { return &DeleteVolume{} }},
	KindCreateSecret:  {"CreateSecret", func() Command { return &CreateSecret{} }},
	KindUpdateSecret:  {"UpdateSecret", func() Command { return &UpdateSecret{} }},
	KindDeleteSecret:  {"DeleteSecret", func() Command { return &DeleteSecret{} }},
	KindCreateNetwork: {"CreateNetwork", func() Command { return &CreateNetwork{} }},
	KindUpdateNetwork: {"UpdateNetwork", func() Command { return &UpdateNetwork{} }},
	KindDeleteNetwork: {"DeleteNetwork", func() Command { return &DeleteNetwork{} }},
	KindRegisterNode:  {"RegisterNode", func() Command { return &RegisterNode{} }},
	KindUpdateNode:    {"UpdateNode", func() Command { return &UpdateNode{} }},
	KindSetNodeStatus: {"SetNodeStatus", func() Command { return &SetNodeStatus{} }},
	KindReportTasks:   {"ReportTasks", func() Command { return &ReportTasks{} }},
	KindPlanTasks:     {"PlanTasks", func() Command { return &PlanTasks{} }},
	KindSetCluster:    {"SetCluster", func() Command { return &SetCluster{} }},
	KindDeleteNode:    {"DeleteNode", func() Command { return &DeleteNode{} }},
	KindBatch:         {"Batch", func() Command { return &Batch{} }},
	KindReportVolumes: {"ReportVolumes", func() Command { return &ReportVolumes{} }},
}

func (k Kind) String() string {
	if c, ok := kinds[k]; ok {
		return c.name
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Command is one entry of the replicated log.
type Command interface {
	Kind() Kind
}

// CreateService adds a service; its ID and name must be free.
type CreateService struct{ Service *types.Service }

// UpdateService replaces an existing service.
type UpdateService struct{ Service *types.Service }

// DeleteService removes a service and all of its tasks; the workers stop
// the containers of tasks that are no longer assigned to them.
type DeleteService struct{ ID string }

// CreateVolume adds a volume; its ID and name must be free.
type CreateVolume struct{ Volume *types.Volume }

// UpdateVolume replaces an existing volume. A local volume pinned to a node
// stays on that node.
type UpdateVolume struct{ Volume *types.Volume }

// DeleteVolume removes a volume no service mounts. With Force, the
// replicated services that mount it are stopped (scaled to 0 replicas) in
// the same step; a global service that mounts it still refuses the delete,
// as it cannot be stopped but by removing it.
type DeleteVolume struct {
	ID    string
	Force bool `json:",omitempty"`
}

// CreateSecret adds a secret (Data already encrypted); its ID and name must
// be free.
type CreateSecret struct{ Secret *types.Secret }

// UpdateSecret replaces an existing secret. Older versions no task
// running or to run uses are dropped from it. With IfVersion set, the
// stored secret must still be at that version (ErrConflict otherwise), so
// that two writers that read the same version cannot lose one's write.
type UpdateSecret struct {
	Secret    *types.Secret
	IfVersion int `json:",omitempty"`
}

// DeleteSecret removes a secret no service uses. With Force, it is first
// taken out of the services that use it, in the same step (their running
// tasks keep the value they have).
type DeleteSecret struct {
	ID    string
	Force bool `json:",omitempty"`
}

// VolumeReport is what a node found of one of its volumes.
type VolumeReport struct {
	ID string
	// MountPath is the volume's directory on the node; empty: unchanged.
	MountPath string `json:",omitempty"`
	// Size is the bytes it holds, measured at SizeAt; a zero SizeAt
	// leaves the size as it was.
	Size   int64     `json:",omitempty"`
	SizeAt time.Time `json:",omitzero"`
}

// ReportVolumes records what a node reports of the local volumes pinned to
// it: their directory and size, and nothing else of the records. A volume
// deleted, or not on that node, is skipped.
type ReportVolumes struct {
	NodeID  string
	Volumes []VolumeReport
}

// Batch applies its commands in order, in one transaction: all of them or,
// if one fails, none (`warren apply`).
type Batch struct{ Commands []Command }

// CreateNetwork adds a network; its ID and name must be free.
type CreateNetwork struct{ Network *types.Network }

// UpdateNetwork replaces an existing network.
type UpdateNetwork struct{ Network *types.Network }

// DeleteNetwork removes a network no service is attached to.
type DeleteNetwork struct{ ID string }

// RegisterNode adds a node, or replaces it when it joins again.
type RegisterNode struct{ Node *types.Node }

// UpdateNode replaces an existing node (labels, availability, role).
type UpdateNode struct{ Node *types.Node }

// SetNodeStatus records a node's liveness as the leader's dispatcher sees
// it, with the time of its last heartbeat.
type SetNodeStatus struct {
	NodeID        string
	Status        types.NodeStatus
	LastHeartbeat time.Time
}

// TaskStatus is what a worker observed of one task's container.
type TaskStatus struct {
	TaskID      string
	NodeID      string // the reporting node; reports from another node are ignored
	ActualState types.ContainerState
	ContainerID string
	Health      types.HealthStatus `json:",omitempty"`
	ExitCode    int
	Error       string
	StartedAt   time.Time
	FinishedAt  time.Time
}

// ReportTasks records a worker's observations of its tasks.
type ReportTasks struct{ Statuses []TaskStatus }

// PlanTasks commits a decision of the reconciler and scheduler in one
// step: tasks to create or change, tasks to delete, and the local volumes
// the placements pin to their nodes.
type PlanTasks struct {
	Upsert []*types.Container
	Delete []string
	Pin    []*types.Volume
}

// SetCluster creates the cluster's record or replaces it (new join tokens,
// a new CA certificate); the cluster's ID never changes.
type SetCluster struct{ Cluster *types.Cluster }

// DeleteNode removes a node from the cluster with every task assigned to
// it, so that the reconciler places their replacements on other nodes. It
// is refused while a volume is pinned to the node, as the volume's data
// lives only there.
type DeleteNode struct{ ID string }

// Kind implements Command.
func (*Batch) Kind() Kind { return KindBatch }

// Kind implements Command.
func (*ReportVolumes) Kind() Kind { return KindReportVolumes }

// batchEntry is how a Batch's command is written inside it: its kind,
// then the command as JSON.
type batchEntry struct {
	Kind    Kind
	Command json.RawMessage
}

// MarshalJSON writes each command with its kind, as Encode does.
func (b *Batch) MarshalJSON() ([]byte, error) {
	entries := make([]batchEntry, len(b.Commands))
	for i, c := range b.Commands {
		if c == nil {
			return nil, fmt.Errorf("fsm: batch command %d is nil", i)
		}
		if _, nested := c.(*Batch); nested {
			return nil, fmt.Errorf("fsm: batch command %d is a batch: flatten it", i)
		}
		body, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		entries[i] = batchEntry{Kind: c.Kind(), Command: body}
	}
	return json.Marshal(struct{ Commands []batchEntry }{entries})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (b *Batch) UnmarshalJSON(data []byte) error {
	var raw struct{ Commands []batchEntry }
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	b.Commands = make([]Command, len(raw.Commands))
	for i, e := range raw.Commands {
		k, ok := kinds[e.Kind]
		if !ok || e.Kind == KindBatch {
			return fmt.Errorf("batch command %d: unknown or nested kind %d: upgrade warren on every manager", i, e.Kind)
		}
		c := k.new()
		if err := json.Unmarshal(e.Command, c); err != nil {
			return fmt.Errorf("batch command %d (%s): %v", i, e.Kind, err)
		}
		b.Commands[i] = c
	}
	return nil
}

// Kind implements Command.
func (*CreateService) Kind() Kind { return KindCreateService }

// Kind implements Command.
func (*UpdateService) Kind() Kind { return KindUpdateService }

// Kind implements Command.
func (*DeleteService) Kind() Kind { return KindDeleteService }

// Kind implements Command.
func (*CreateVolume) Kind() Kind { return KindCreateVolume }

// Kind implements Command.
func (*UpdateVolume) Kind() Kind { return KindUpdateVolume }

// Kind implements Command.
func (*DeleteVolume) Kind() Kind { return KindDeleteVolume }

// Kind implements Command.
func (*CreateSecret) Kind() Kind { return KindCreateSecret }

// Kind implements Command.
func (*UpdateSecret) Kind() Kind { return KindUpdateSecret }

// Kind implements Command.
func (*DeleteSecret) Kind() Kind { return KindDeleteSecret }

// Kind implements Command.
func (*CreateNetwork) Kind() Kind { return KindCreateNetwork }

// Kind implements Command.
func (*UpdateNetwork) Kind() Kind { return KindUpdateNetwork }

// Kind implements Command.
func (*DeleteNetwork) Kind() Kind { return KindDeleteNetwork }

// Kind implements Command.
func (*RegisterNode) Kind() Kind { return KindRegisterNode }

// Kind implements Command.
func (*UpdateNode) Kind() Kind { return KindUpdateNode }

// Kind implements Command.
func (*SetNodeStatus) Kind() Kind { return KindSetNodeStatus }

// Kind implements Command.
func (*ReportTasks) Kind() Kind { return KindReportTasks }

// Kind implements Command.
func (*PlanTasks) Kind() Kind { return KindPlanTasks }

// Kind implements Command.
func (*SetCluster) Kind() Kind { return KindSetCluster }

// Kind implements Command.
func (*DeleteNode) Kind() Kind { return KindDeleteNode }

// ErrFormat is wrapped by the errors for log entries that cannot be
// decoded.
var ErrFormat = errors.New("fsm: bad command encoding")

// Encode returns the log entry for c: the format version, the kind, then
// the command as JSON.
func Encode(c Command) ([]byte, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("fsm: encode %s: %w", c.Kind(), err)
	}
	return append([]byte{Version, byte(c.Kind())}, body...), nil
}

// Decode parses a log entry written by Encode. It returns a pointer to the
// command struct (e.g. *CreateService).
func Decode(b []byte) (Command, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrFormat, len(b))
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w: format version %d, this binary reads %d: upgrade warren on every manager", ErrFormat, b[0], Version)
	}
	k, ok := kinds[Kind(b[1])]
	if !ok {
		return nil, fmt.Errorf("%w: unknown command kind %d: upgrade warren on every manager", ErrFormat, b[1])
	}
	c := k.new()
	if err := json.Unmarshal(b[2:], c); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFormat, c.Kind(), err)
	}
	return c, nil
}
