package raftsim

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

const (
	// clientTimeout is how long a client waits for a manager's answer
	// before it takes the outcome as unknown and tries the next manager.
	clientTimeout = time.Second
	// opDeadline is how long a client keeps retrying an operation that
	// certainly did not happen (no leader, a manager down) before it gives
	// up; such an operation is left out of the history.
	opDeadline = 5 * time.Second
	// retryDelay is the pause before a retry at another manager.
	retryDelay = 20 * time.Millisecond
)

// Workload is what the clients do during a load step.
type Workload struct {
	// Clients is how many clients run at once, each one operation at a
	// time.
	Clients int
	// Rate is operations a second, all clients together.
	Rate int
	For  time.Duration
	// Shared are the keys of the objects ("service/ID") every client
	// updates and reads; the creates are of secrets of each client's own.
	Shared []string
}

// client sends operations to the manager it believes leads, following the
// leader a manager names, and moving on to the next manager when one is
// down or does not answer.
type client struct {
	c      *Cluster
	id     int
	target int
	n      int
}

func (c *Cluster) newClient(id int) *client {
	return &client{c: c, id: id, target: c.src.IntN(len(c.managers))}
}

// Load starts the workload's clients; wg is done when they have all
// stopped.
func (c *Cluster) Load(w Workload, wg *sync.WaitGroup) {
	if w.Clients <= 0 || w.Rate <= 0 {
		return
	}
	every := time.Duration(w.Clients) * time.Second / time.Duration(w.Rate)
	end := time.Now().Add(w.For)
	for i := range w.Clients {
		cl := c.newClient(i)
		wg.Go(func() {
			time.Sleep(every * time.Duration(i) / time.Duration(w.Clients))
			for time.Now().Before(end) && c.Violation() == nil {
				next := time.Now().Add(every)
				cl.do(cl.draw(w.Shared))
				sleepUntil(next)
			}
		})
	}
}

// draw picks the client's next operation: half creates of new secrets,
// a fifth updates of shared objects, the rest reads of secrets created so
// far (by anyone) and of shared objects.
func (cl *client) draw(shared []string) opInput {
	c := cl.c
	p := c.src.Float64()
	if p < 0.85 && p >= 0.7 {
		if key, ok := c.anyCreated(); ok {
			return opInput{op: opRead, key: key}
		}
	}
	switch {
	case p < 0.5 || len(shared) == 0:
		cl.n++
		name := fmt.Sprintf("c%d-%d", cl.id, cl.n)
		return opInput{op: opCreate, key: secretPrefix + name, value: name}
	case p < 0.7:
		cl.n++
		return opInput{op: opUpdate, key: shared[c.src.IntN(len(shared))], value: fmt.Sprintf("c%d-%d", cl.id, cl.n)}
	default:
		return opInput{op: opRead, key: shared[c.src.IntN(len(shared))]}
	}
}

// do carries out one operation and records it in the history: an
// acknowledged write or a served read with its answer, a write with no
// answer as unknown (it may have been applied), and nothing for what
// certainly did not happen.
func (cl *client) do(in opInput) {
	c := cl.c
	req := request{op: in.op, key: in.key}
	if in.op != opRead {
		req.cmd = command(in.op, in.key, in.value, time.Now())
		if in.op == opCreate {
			c.issued(in.key)
		}
	}
	call, at := c.hist.tick(), c.Elapsed()
	giveUp := time.Now().Add(opDeadline)
	for {
		resp, err := c.call(c.client, cl.pick(in.op), req, clientTimeout)
		switch {
		case errors.Is(err, ErrRefused):
			cl.next()
		case err != nil, resp.status == stUnknown:
			cl.next()
			if in.op != opRead {
				c.hist.add(cl.id, in, opOutput{status: stUnknown}, call, math.MaxInt64, at)
			}
			return
		case resp.status == stNotLeader:
			cl.follow(resp.leader)
		case resp.status == stFailed:
			cl.next()
		case resp.status == stRejected:
			c.event("client %d: %s %s rejected: %v", cl.id, in.op, in.key, resp.err)
			return
		default:
			ret := c.hist.tick()
			c.hist.add(cl.id, in, opOutput{status: resp.status, exists: resp.exists, value: resp.value}, call, ret, at)
			if in.op != opRead && resp.status == stOK {
				c.acknowledged(in.op, in.key, in.value, resp.index)
			}
			return
		}
		if time.Now().After(giveUp) {
			return
		}
		time.Sleep(retryDelay)
	}
}

// pick is the manager to send an operation to: the one the client
// believes leads (any manager, for reads of the stale-read variant).
func (cl *client) pick(op opKind) string {
	if op == opRead && cl.c.cfg.Broken == BrokenStaleRead {
		return cl.c.managers[cl.c.src.IntN(len(cl.c.managers))].id
	}
	return cl.c.managers[cl.target].id
}

func (cl *client) next() { cl.target = (cl.target + 1) % len(cl.c.managers) }

func (cl *client) follow(leader string) {
	for i, m := range cl.c.managers {
		if m.id == leader {
			cl.target = i
			return
		}
	}
	cl.next()
}

// write carries out one write as a client of its own (id) would, for
// the scenario's setup steps and the probe after the heal.
func (c *Cluster) write(id int, op opKind, key, value string) {
	c.newClient(id).do(opInput{op: op, key: key, value: value})
}
