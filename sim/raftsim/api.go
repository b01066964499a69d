package raftsim

import (
	"errors"
	"os"
	"time"

	hraft "github.com/hashicorp/raft"

	wraft "github.com/warren-orchestrator/warren/backends/raft"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
)

// What a manager's API answers a client. The write path is the one
// backends/raft.Node.Apply takes (raft.Apply, wait for the future, the
// FSM's response), and its errors are sorted the way Node.writeError
// sorts them: what certainly did not reach the log, and what may have.
type status int

const (
	// stOK: the write was committed and applied (or the read was served).
	stOK status = iota
	// stExists, stNotFound: the write was committed, and the FSM refused
	// it (fsm.ErrExists, state.ErrNotFound): it changed nothing.
	stExists
	stNotFound
	// stRejected: the FSM refused the write for another reason.
	stRejected
	// stNotLeader: this manager does not lead; nothing was appended
	// (Node's ErrNotLeader). Leader names the leader when known.
	stNotLeader
	// stFailed: nothing was appended (raft's enqueue timed out), or a read
	// could not be served.
	stFailed
	// stUnknown: the leader lost the lead, or shut down, while the write
	// was in flight (Node's ErrOutcomeUnknown): it may or may not be
	// applied.
	stUnknown
)

func (s status) String() string {
	return [...]string{"ok", "exists", "not-found", "rejected", "not-leader", "failed", "unknown"}[s]
}

// request is a client's call to a manager's API.
type request struct {
	op  opKind
	key string // the object, as "secret/ID" or "service/ID"
	cmd fsm.Command
}

// response is a manager's answer.
type response struct {
	status status
	leader string
	index  uint64
	exists bool
	value  string
	err    error
}

// applyTimeout is Node's Timing.Apply.
var applyTimeout = wraft.DefaultTiming.Apply

// serve answers a client's request on this incarnation. It runs in the
// network's goroutine for the request.
func (inc *incarnation) serve(req any) any {
	r := req.(request)
	select {
	case <-inc.dead:
		return response{status: stUnknown} // never sent: the endpoint is down
	default:
	}
	if r.op == opRead {
		return inc.read(r)
	}
	return inc.write(r)
}

func (inc *incarnation) write(r request) response {
	data, err := fsm.Encode(r.cmd)
	if err != nil {
		return response{status: stRejected, err: err}
	}
	f := inc.raft.Apply(data, applyTimeout)
	if inc.m.c.cfg.Broken == BrokenAckBeforeCommit {
		// The broken manager answers once raft has taken the write, before
		// it is committed: a leader that is cut off or crashes loses it.
		if inc.raft.State() == hraft.Leader {
			return response{status: stOK}
		}
	}
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, hraft.ErrNotLeader), errors.Is(err, hraft.ErrLeadershipTransferInProgress):
			_, id := inc.raft.LeaderWithID()
			return response{status: stNotLeader, leader: string(id), err: err}
		case errors.Is(err, hraft.ErrEnqueueTimeout):
			return response{status: stFailed, err: err}
		default: // ErrLeadershipLost, ErrRaftShutdown, ErrAbortedByRestore
			return response{status: stUnknown, err: err}
		}
	}
	resp := response{status: stOK, index: f.Index()}
	if err, ok := f.Response().(error); ok && err != nil {
		resp.err = err
		switch {
		case errors.Is(err, fsm.ErrExists):
			resp.status = stExists
		case errors.Is(err, state.ErrNotFound):
			resp.status = stNotFound
		default:
			resp.status = stRejected
		}
	}
	return resp
}

// read serves a linearizable read as Node documents it: on the leader, a
// Barrier, then the local store.
func (inc *incarnation) read(r request) response {
	if inc.m.c.cfg.Broken != BrokenStaleRead {
		if inc.raft.State() != hraft.Leader {
			_, id := inc.raft.LeaderWithID()
			return response{status: stNotLeader, leader: string(id)}
		}
		if err := inc.raft.Barrier(applyTimeout).Error(); err != nil {
			return response{status: stFailed, err: err}
		}
	}
	exists, value, err := readObject(inc.fsm.Store(), r.key)
	if err != nil {
		return response{status: stFailed, err: err}
	}
	return response{status: stOK, exists: exists, value: value}
}

// call carries a client's request to a manager over the network and waits
// for the answer, for at most timeout. A request that got no answer may
// have been carried out.
func (c *Cluster) call(from *endpoint, to string, req request, timeout time.Duration) (response, error) {
	out, err := c.net.roundTrip(from, to, func(dst *endpoint) (any, bool) {
		if dst.api == nil {
			return nil, false
		}
		a := dst.api(req)
		select {
		case <-dst.done:
			return nil, false // the manager crashed before it could answer
		default:
			return a, true
		}
	})
	if err != nil {
		return response{}, err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case a := <-out:
		return a.(response), nil
	case <-timer.C:
		return response{}, ErrTimeout
	}
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
