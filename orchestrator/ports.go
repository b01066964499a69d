package orchestrator

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Clock tells the core the time: the wall clock in production
// (backends/clock), virtual time in the simulator. The core computes
// deadlines from it and never sleeps.
type Clock interface {
	Now() time.Time
}

// ErrNoContainer is returned by a Runtime for a task it has no container of.
var ErrNoContainer = errors.New("runtime: no container for this task")

// ErrContainerExists is returned by Runtime.Start for a task that already
// has a container.
var ErrContainerExists = errors.New("runtime: the task already has a container")

// Runtime runs the containers of one node, one container per task. Calls
// return once the runtime has taken the request; what then happens to a
// container (started, crashed, exited, unhealthy) is observed through
// Containers, which the worker's agent polls. That keeps the agent a pure
// function of what it is assigned and what it observes, in production
// (containerd) and in the simulator (backends/fake) alike.
type Runtime interface {
	// Start creates and starts the task's container, with the plaintext of
	// the secrets it uses by name.
	Start(task *types.Container, secrets map[string][]byte) error
	// Stop asks the task's container to stop: SIGTERM, then SIGKILL after
	// timeout.
	Stop(taskID string, timeout time.Duration) error
	// Remove deletes a stopped container and everything that belongs to it
	// (secrets tmpfs, mounts, port rules).
	Remove(taskID string) error
	// Containers reports every container the runtime holds, ordered by
	// task ID.
	Containers() ([]RuntimeContainer, error)
}

// CloneSecrets copies a Start call's secrets, map and bytes: a runtime
// keeps its own copy, as the caller may wipe its plaintext after Start.
func CloneSecrets(s map[string][]byte) map[string][]byte {
	if s == nil {
		return nil
	}
	out := make(map[string][]byte, len(s))
	for k, v := range s {
		out[k] = slices.Clone(v)
	}
	return out
}

// RuntimeContainer is a container as the runtime sees it.
type RuntimeContainer struct {
	TaskID    string
	RuntimeID string
	// State is pending while the container is created and started, then
	// running, and finally complete (exit 0), failed (exit != 0, or it
	// could not start) or shutdown (stopped on request).
	State      types.ContainerState
	Health     types.HealthStatus
	ExitCode   int
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
}

// Peer is another node on the overlay network.
type Peer struct {
	NodeID    string
	Endpoint  string // host:port the node's overlay listens on
	PublicKey string
	OverlayIP netip.Addr
}

// Overlay connects this node to its peers. SetPeers is declarative: after it,
// the overlay has exactly these peers.
type Overlay interface {
	SetPeers(peers []Peer) error
	Peers() ([]Peer, error)
}

// Proposer carries a command to the replicated log: the raft log in
// production, the Raft model in the simulator. done runs once the command
// has been applied, with the result of applying it, or with an error if it
// will not be (this manager lost the lead). done runs on the loop that owns
// the caller, never concurrently with it.
type Proposer interface {
	Propose(cmd fsm.Command, done func(error))
}
