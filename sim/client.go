package sim

import (
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
}

type write struct {
	id       uint64
	data     []byte
	measured bool // a load write, whose latency the timeline records
	start    time.Duration
	sample   int // index in Timeline.Writes, when measured
	done     bool
	attempt  int
}

func newClient(c *Cluster) *client {
	cl := &client{c: c, id: "client", writes: map[uint64]*write{}}
	c.net.attach(cl.id, cl.receive)
	return cl
}

func (cl *client) write(data []byte, measured bool) {
	cl.next++
	w := &write{id: cl.next, data: data, measured: measured, start: cl.c.eng.Elapsed(), sample: -1}
	if measured {
		w.sample = len(cl.c.tl.Writes)
		cl.c.tl.Writes = append(cl.c.tl.Writes, WriteSample{At: w.start})
	}
	cl.writes[w.id] = w
	cl.send(w)
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
	cl.c.acknowledged(w, r.Index)
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
