package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// clientTimeout is how long the client waits for an answer before it
// tries the next manager.
const clientTimeout = time.Second

// client writes to the cluster as the CLI would: to the manager it
// believes leads, following redirects, trying the next manager when one
// does not answer, until the write is acknowledged.
type client struct {
	c      *Cluster
	id     string
	target int
	next   uint64
	writes map[uint64]*write
	// ops are the operator's commands waiting for the one in flight
	// (opBusy) to be answered.
	ops    []operation
	opBusy bool
}

// operation is one command of the operator: built when its turn comes, so
// that what it reads (a service to scale) is read then, as a CLI call
// reads it.
type operation struct {
	what  string
	build func() (fsm.Command, error)
}

// stepRetry is how soon an operation that found no leader to read from
// tries again.
const stepRetry = 100 * time.Millisecond

type write struct {
	id       uint64
	data     []byte
	measured bool // a load write, whose latency the timeline records
	start    time.Duration
	sample   int // index in Timeline.Writes, when measured
	done     bool
	attempt  int
	op       bool // the operator's: the next operation waits for it
}

func newClient(c *Cluster) *client {
	cl := &client{c: c, id: "client", writes: map[uint64]*write{}}
	c.net.attach(cl.id, cl.receive)
	return cl
}

func (cl *client) write(data []byte, measured bool) *write {
	cl.next++
	w := &write{id: cl.next, data: data, measured: measured, start: cl.c.eng.Elapsed(), sample: -1}
	if measured {
		w.sample = len(cl.c.tl.Writes)
		cl.c.tl.Writes = append(cl.c.tl.Writes, WriteSample{At: w.start})
	}
	cl.writes[w.id] = w
	cl.send(w)
	return w
}

// operate runs an operator's command after the ones before it: one at a
// time, each sent once the one before it was answered, as a script of CLI
// calls does. So a service is never created before the secret it uses,
// however the network delays or reorders the writes and their retries.
func (cl *client) operate(op operation) {
	cl.ops = append(cl.ops, op)
	if !cl.opBusy {
		cl.nextOp()
	}
}

// nextOp builds and sends the next operation; one that needs a leader to
// read from while none leads waits for one.
func (cl *client) nextOp() {
	cl.opBusy = false
	for len(cl.ops) > 0 {
		op := cl.ops[0]
		cmd, err := op.build()
		if errors.Is(err, errNoLeaderToRead) {
			cl.opBusy = true
			cl.c.eng.Tracef("%s waits for a leader", op.what)
			cl.c.eng.After(stepRetry, cl.nextOp)
			return
		}
		cl.ops = cl.ops[1:]
		if err != nil {
			cl.c.eng.Tracef("%s failed: %v", op.what, err)
			cl.c.event("", "%s failed: %v", op.what, err)
			continue
		}
		if cmd == nil {
			continue
		}
		data, err := fsm.Encode(cmd)
		if err != nil {
			panic(fmt.Sprintf("sim: encode %s: %v", cmd.Kind(), err))
		}
		cl.opBusy = true
		cl.write(data, false).op = true
		return
	}
}

func (cl *client) send(w *write) {
	w.attempt++
	attempt := w.attempt
	cl.c.net.Send(cl.id, cl.c.managers[cl.target].id, clientWrite{ID: w.id, Cmd: w.data})
	cl.c.eng.After(clientTimeout, func() {
		if !w.done && w.attempt == attempt {
			cl.target = (cl.target + 1) % len(cl.c.managers)
			cl.send(w)
		}
	})
}

func (cl *client) receive(from string, msg any) {
	r, ok := msg.(clientReply)
	if !ok {
		return
	}
	w := cl.writes[r.ID]
	if w == nil || w.done {
		return
	}
	if !r.Acked {
		for i, m := range cl.c.managers {
			if m.id == r.Leader {
				cl.target = i
			}
		}
		if r.Leader == "" {
			cl.target = (cl.target + 1) % len(cl.c.managers)
		}
		// Try again shortly; an election may be under way.
		attempt := w.attempt
		cl.c.eng.After(10*time.Millisecond, func() {
			if !w.done && w.attempt == attempt {
				cl.send(w)
			}
		})
		return
	}
	w.done = true
	delete(cl.writes, w.id)
	if r.Err != "" && !w.measured {
		// A step's write the cluster refused: worth seeing in the trace
		// and the report, as the scenario meant it to change something.
		cl.c.eng.Tracef("client write %d refused: %s", w.id, r.Err)
		cl.c.event("", "a step's write was refused: %s", r.Err)
	}
	cl.c.acknowledged(w, r.Index)
	if w.op {
		cl.nextOp()
	}
}

// load issues rate writes per second for span, each a new secret.
func (cl *client) load(rate int, span time.Duration) {
	if rate <= 0 {
		return
	}
	every := time.Second / time.Duration(rate)
	end := cl.c.eng.Elapsed() + span
	var tick func()
	tick = func() {
		if cl.c.eng.Elapsed() >= end {
			return
		}
		data, err := fsm.Encode(&fsm.CreateSecret{Secret: &types.Secret{
			ID: fmt.Sprintf("load-%d", cl.next+1), Name: fmt.Sprintf("load-%d", cl.next+1),
			Data: []byte("x"), CreatedAt: cl.c.eng.Now(), UpdatedAt: cl.c.eng.Now(),
		}})
		if err != nil {
			panic(err)
		}
		cl.write(data, true)
		cl.c.eng.After(every, tick)
	}
	tick()
}

// acknowledged records a write the cluster acknowledged at index idx.
func (c *Cluster) acknowledged(w *write, idx uint64) {
	c.acked[w.id] = idx
	if prev, ok := c.ackedAt[idx]; ok && prev != w.id {
		c.fail("no acknowledged write is lost", "writes %d and %d were both acknowledged at index %d", prev, w.id, idx)
	}
	c.ackedAt[idx] = w.id
	if e, ok := c.committed[idx]; ok && e.Write != w.id {
		c.fail("no acknowledged write is lost", "write %d acknowledged at index %d, where another entry is committed", w.id, idx)
	}
	if w.sample >= 0 {
		c.tl.Writes[w.sample].Acked = true
		c.tl.Writes[w.sample].Latency = c.eng.Elapsed() - w.start
	}
}
