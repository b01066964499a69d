package raftsim

import (
	"errors"
	"os"
	"time"

	wraft "github.com/warren-orchestrator/warren/backends/raft"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
)

// What a manager's API answers a client. A write is Node.Apply, a read
// Node.Barrier and then Node.Store, as the daemon serves them; Node's
// errors are sorted the way a client must sort them: what certainly did
// not reach the log, and what may have.
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
	// stFailed: nothing was appended (Node's ErrNoQuorum: raft's enqueue
	// timed out; state.ErrClosed alone: the manager is closing), or a read
	// could not be served.
	stFailed
	// stUnknown: the write may or may not be applied: the leader lost the
	// lead or shut down while it was in flight (Node's ErrOutcomeUnknown),
	// or raft failed it with an error of its own (a failed append).
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
	node := inc.node
	if inc.m.c.cfg.Broken == BrokenAckBeforeCommit && node.IsLeader() {
		// The broken manager answers once it has handed the write to raft,
		// before it is committed: a leader that is cut off or crashes
		// loses it.
		node.Propose(r.cmd, func(error) {})
		return response{status: stOK}
	}
	index, err := node.Apply(r.cmd)
	switch {
	case err == nil:
		return response{status: stOK, index: index}
	case index > 0: // committed: the FSM's own answer
		resp := response{status: stRejected, index: index, err: err}
		switch {
		case errors.Is(err, fsm.ErrExists):
			resp.status = stExists
		case errors.Is(err, state.ErrNotFound):
			resp.status = stNotFound
		}
		return resp
	case errors.Is(err, wraft.ErrOutcomeUnknown):
		return response{status: stUnknown, err: err}
	case errors.Is(err, wraft.ErrNotLeader):
		id, _ := node.Leader()
		return response{status: stNotLeader, leader: id, err: err}
	case errors.Is(err, wraft.ErrNoQuorum), errors.Is(err, state.ErrClosed):
		return response{status: stFailed, err: err}
	default:
		return response{status: stUnknown, err: err}
	}
}

// read serves a linearizable read as Node documents it: a Barrier (which
// only the leader can pass), then the local store.
func (inc *incarnation) read(r request) response {
	node := inc.node
	if inc.m.c.cfg.Broken != BrokenStaleRead {
		if err := node.Barrier(); err != nil {
			if errors.Is(err, wraft.ErrNotLeader) {
				id, _ := node.Leader()
				return response{status: stNotLeader, leader: id, err: err}
			}
			return response{status: stFailed, err: err}
		}
	}
	exists, value, err := readObject(node.Store(), r.key)
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
