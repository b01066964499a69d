// Package api is Warren's HTTP/JSON interface under /v1: the wire types,
// the handler a manager serves (over a Backend: the manager's raft node,
// its store and its leader loop), and the Go client the CLI and the workers
// use. The client finds the leader by itself: a manager that does not lead
// answers a write with the leader's address, and the client sends it there.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Prefix is the path prefix of every endpoint of this version of the API.
const Prefix = "/v1"

// Roles a client certificate can carry (the same strings as the PKI's).
const (
	RoleManager = "manager"
	RoleWorker  = "worker"
	RoleAdmin   = "admin"
)

var (
	// ErrNotLeader is wrapped by a NotLeaderError: the request needs the
	// leader and this manager is not it.
	ErrNotLeader = errors.New("api: this manager is not the leader")
	// ErrNoLeader is wrapped by the error for a request that needs the
	// leader while none is known (an election is under way, or quorum is
	// lost).
	ErrNoLeader = errors.New("api: no leader")
	// ErrNoQuorum is wrapped by the error for a write that could not be
	// committed: too few managers answer.
	ErrNoQuorum = errors.New("api: no quorum")
	// ErrOutcomeUnknown is wrapped by the error for a write whose leader
	// lost the lead while committing it: it may or may not have been
	// applied, so it is not sent again on the caller's behalf.
	ErrOutcomeUnknown = errors.New("api: the write may or may not have been applied")
	// ErrUnauthorized is wrapped by the error for a request without a
	// client certificate or join token the endpoint accepts.
	ErrUnauthorized = errors.New("api: unauthorized")
	// ErrForbidden is wrapped by the error for a request whose certificate
	// does not allow it (a worker calling an admin endpoint, a node acting
	// for another node).
	ErrForbidden = errors.New("api: forbidden")
	// ErrRemoved is wrapped by the error for a node that was removed from
	// the cluster: it must join again with a token.
	ErrRemoved = errors.New("api: this node was removed from the cluster")
	// ErrBadRequest is wrapped by the error for a request the server cannot
	// parse.
	ErrBadRequest = errors.New("api: bad request")
	// ErrUnavailable is wrapped by the client's error when no manager it
	// knows could be reached.
	ErrUnavailable = errors.New("api: no manager reachable")
)

// NotLeaderError says which manager leads, for the client to retry there.
type NotLeaderError struct {
	// Leader is the leading manager; its APIAddr is where to retry.
	Leader Manager
}

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("%v; the leader is %s at %s", ErrNotLeader, e.Leader.ID, e.Leader.APIAddr)
}

// Unwrap makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// Error is the body of every non-2xx answer. Code names the sentinel error
// (see the codes below) so the client can rebuild an error that errors.Is
// recognises; Message is for people.
type Error struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Leader  *Manager `json:"leader,omitempty"` // with CodeNotLeader
}

// Error codes and the HTTP status each is sent with.
const (
	CodeNotLeader    = "not_leader"      // 421 Misdirected Request
	CodeNoLeader     = "no_leader"       // 503
	CodeNoQuorum     = "no_quorum"       // 503
	CodeUnknown      = "outcome_unknown" // 503, not retried
	CodeUnauthorized = "unauthorized"    // 401
	CodeForbidden    = "forbidden"       // 403
	CodeRemoved      = "removed"         // 410 Gone
	CodeBadRequest   = "bad_request"     // 400
	CodeInvalid      = "invalid"         // 400, types.ErrInvalid
	CodeNotFound     = "not_found"       // 404, state.ErrNotFound
	CodeExists       = "exists"          // 409, fsm.ErrExists
	CodeNameTaken    = "name_taken"      // 409, state.ErrNameTaken
	CodeInUse        = "in_use"          // 409, fsm.ErrInUse
	CodeConflict     = "conflict"        // 409, fsm.ErrConflict
	CodeNotManager   = "not_manager"     // 421, ErrNotManager: a worker answered
	CodeUnsupported  = "unsupported"     // 501, errors.ErrUnsupported
	CodeInternal     = "internal"        // 500
)

// Manager is one manager of the cluster as the API reports it.
type Manager struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
	// Reachable is whether the answering manager could reach this one's
	// API just now (always true for itself); Error says why not.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
}

// ClusterInfo is GET /v1/cluster: `warren cluster info`.
type ClusterInfo struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	// CADigest identifies the cluster's CA ("sha256:<hex>"), as join
	// tokens carry it.
	CADigest string `json:"ca_digest"`
	// Leader is the leader's ID, "" when none is known.
	Leader string `json:"leader"`
	Term   uint64 `json:"term"`
	// AnsweredBy is the manager that answered, and Applied the index of
	// the last log entry it applied.
	AnsweredBy string    `json:"answered_by"`
	Applied    uint64    `json:"applied"`
	Managers   []Manager `json:"managers"`
}

// Health is GET /v1/health, served without a client certificate.
type Health struct {
	ID      string `json:"id"`
	Leader  bool   `json:"leader"`
	Applied uint64 `json:"applied"`
}

// JoinRequest is POST /v1/join, authenticated by Token instead of a client
// certificate (the joining node has none yet).
type JoinRequest struct {
	Token string `json:"token"`
	// Role is RoleManager or RoleWorker; the token must be that role's.
	Role     string `json:"role"`
	Hostname string `json:"hostname"`
	// Addr is the IP (or host) other nodes reach the joining node at; the
	// certificate is issued for it.
	Addr string `json:"addr"`
	// APIAddr and RaftAddr are where a joining manager serves. A worker
	// may give APIAddr too: where it serves its task logs to the managers
	// (and the API, if it is promoted); it becomes the node's address.
	APIAddr  string `json:"api_addr,omitempty"`
	RaftAddr string `json:"raft_addr,omitempty"`
}

// JoinResponse is the answer to a join: the node's identity and
// credentials. A manager also gets the CA key, which every manager keeps
// to issue certificates after a failover.
type JoinResponse struct {
	NodeID    string    `json:"node_id"`
	ClusterID string    `json:"cluster_id"`
	CACert    []byte    `json:"ca_cert"`            // PEM
	CAKey     []byte    `json:"ca_key,omitempty"`   // PEM, managers only
	Cert      []byte    `json:"cert"`               // PEM
	Key       []byte    `json:"key"`                // PEM
	Managers  []Manager `json:"managers,omitempty"` // whom to talk to
}

// AddManagerRequest is POST /v1/managers: a joined manager whose raft is
// now listening asks to become a voter. Its certificate's common name
// must be NodeID.
type AddManagerRequest struct {
	NodeID   string `json:"node_id"`
	RaftAddr string `json:"raft_addr"`
	// APIAddr, when set, becomes the node's address in the state: a
	// promoted worker serves the API from now on.
	APIAddr string `json:"api_addr,omitempty"`
}

// JoinToken is GET /v1/cluster/join-token/{role}, and the answer to
// POST /v1/cluster/join-token/{role}/rotate.
type JoinToken struct {
	Role  string `json:"role"`
	Token string `json:"token"`
}

// HeartbeatRequest is POST /v1/nodes/{id}/heartbeat: a worker is alive and
// reports the task statuses that changed since its last report.
type HeartbeatRequest struct {
	Statuses []fsm.TaskStatus `json:"statuses,omitempty"`
}

// HeartbeatResponse is the node's work: every task assigned to it, the
// statuses of the request that are now committed (the worker marks those
// as sent), and the managers it can fail over to.
type HeartbeatResponse struct {
	// Role is the node's role in the state: a node whose role changed
	// (warren node promote|demote) starts or stops its manager half.
	Role        string             `json:"role"`
	Assignments []agent.Assignment `json:"assignments"`
	Committed   []fsm.TaskStatus   `json:"committed,omitempty"`
	Managers    []Manager          `json:"managers"`
}

// NodeUpdate is PATCH /v1/nodes/{id}: `warren node update`. Nil fields are
// left as they are.
type NodeUpdate struct {
	Availability *types.NodeAvailability `json:"availability,omitempty"`
	// Labels replaces the node's labels when not nil.
	Labels map[string]string `json:"labels,omitempty"`
}

// Event is one line of GET /v1/events: a command applied to the state by
// the answering manager, in log order.
type Event struct {
	Index uint64 `json:"index"`
	// Command is the command's kind, e.g. "CreateService".
	Command string `json:"command"`
	// Object is the kind of record it changes ("service", "node", ...;
	// "container" for task reports and plans) and ID the record's ID when
	// the command names one.
	Object string `json:"object"`
	ID     string `json:"id,omitempty"`
}

// Backend is what the handler needs from the manager it runs on. Errors
// wrap the package's sentinels (ErrNotLeader through a *NotLeaderError,
// ErrNoLeader, ErrNoQuorum, ErrRemoved, ErrForbidden) or the core's
// (types.ErrInvalid, state.ErrNotFound, state.ErrNameTaken, fsm.ErrExists,
// fsm.ErrInUse, fsm.ErrConflict); the handler maps them to codes.
type Backend interface {
	// Apply replicates cmd and returns once it is applied, with the
	// command's own error if it failed. Leader only.
	Apply(ctx context.Context, cmd fsm.Command) error
	// Read runs fn on the state. A linearizable read (stale false) sees
	// every write acknowledged before it started and needs the leader; a
	// stale read runs on this manager's state as it is.
	Read(ctx context.Context, stale bool, fn func(state.Reader) error) error
	// Health is this manager's own view, cheap and local.
	Health() Health
	// Cluster describes the cluster, probing every manager's health.
	Cluster(ctx context.Context) (*ClusterInfo, error)
	// Join checks the token and admits a node: it registers it in the
	// state and issues its certificate. Leader only.
	Join(ctx context.Context, req *JoinRequest) (*JoinResponse, error)
	// AddManager makes a joined manager a raft voter. Leader only.
	AddManager(ctx context.Context, req *AddManagerRequest) error
	// JoinToken returns role's join token, a new one if rotate (the old
	// one stops working). Leader only.
	JoinToken(ctx context.Context, role string, rotate bool) (string, error)
	// Heartbeat records that a node is alive, commits its task reports and
	// returns its work. Leader only.
	Heartbeat(ctx context.Context, nodeID string, req *HeartbeatRequest) (*HeartbeatResponse, error)
	// SetRole makes a worker a manager (RoleManager) or a manager a worker
	// (RoleWorker): the state's record changes, a demoted manager leaves
	// raft first, and the node follows on its next heartbeat. Leader only.
	SetRole(ctx context.Context, id, role string) error
	// Certificate issues the node a certificate for its current role (and
	// the CA key to a manager): how a promoted or demoted node gets the
	// credentials of its new role. Leader only.
	Certificate(ctx context.Context, nodeID string) (*JoinResponse, error)
	// RemoveNode removes a node from the cluster (a manager leaves raft
	// first). Without force, a node that is up is refused. Leader only.
	RemoveNode(ctx context.Context, id string, force bool) error
	// Events calls fn for every command this manager applies from now on,
	// until ctx ends or fn returns an error.
	Events(ctx context.Context, fn func(Event) error) error
	// Backup writes a consistent copy of the state (warren.db as of one
	// applied index) to w, and returns that index.
	Backup(ctx context.Context, w io.Writer) (index uint64, err error)
	// RelayLogs reads the output of tasks from their nodes and calls fn
	// with each line, the streams merged line by line; a task whose
	// output cannot be read gets one entry saying why, and the others go
	// on. It returns once every stream has ended (with opts.Follow: once
	// ctx ends), or with fn's error. Any manager, leader or not.
	RelayLogs(ctx context.Context, tasks []LogTask, opts LogOptions, fn func(LogEntry) error) error
	// SealSecret encrypts a secret's value for the secret with ID id, with
	// the cluster's data key (made on first use). Leader only.
	SealSecret(ctx context.Context, id string, plaintext []byte) ([]byte, error)
	// SecretMatches reports whether plaintext is the value of s's current
	// version, opened with the cluster's data key (`warren apply` stores a
	// new version only when the value differs). Leader only.
	SecretMatches(ctx context.Context, s *types.Secret, plaintext []byte) (bool, error)
	// Unlock gives this manager, and only it, the unlock key of an
	// autolocked cluster: it checks the key against the cluster's data
	// key (a wrong one wraps ErrForbidden and changes nothing) and keeps
	// it in memory, so that it can seal and open secrets. Any manager,
	// leader or not.
	Unlock(ctx context.Context, key []byte) (*UnlockResult, error)
	// RotateDataKey makes a new data key and seals every secret (every
	// version) again under it, then drops the old key; a rotation an
	// earlier leader left unfinished is finished instead. It calls
	// progress once the new key is in place (an error before that is an
	// ordinary answer), as it goes, and last with Done set; it goes on
	// when the caller leaves. Leader only.
	RotateDataKey(ctx context.Context, progress func(KeyRotation)) error
}
