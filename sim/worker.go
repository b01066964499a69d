package sim

import (
	"time"

	"github.com/warren-orchestrator/warren/backends/fake"
	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
)

// HeartbeatInterval is how often a worker reports to the leader.
const HeartbeatInterval = 500 * time.Millisecond

// worker is a worker node: the real agent on a fake runtime, heartbeating
// to the manager it believes leads, and failing over to the next when that
// one does not answer.
type worker struct {
	c  *Cluster
	id string
	rt *fake.Runtime
	// linger, in the broken variant BrokenSecretsLinger, wraps rt and
	// keeps the secrets of stopped tasks.
	linger *lingeringRuntime
	agent  *agent.Agent
	life
	target  int // index into the managers it talks to
	waiting bool
	unsent  []fsm.TaskStatus
	assigns []agent.Assignment
	// sickUntil is when an unhealthy fault ends: until then the
	// containers it starts fail their health checks.
	sickUntil time.Duration
}

func newWorker(c *Cluster, id string) *worker {
	w := &worker{c: c, id: id}
	c.net.attach(id, w.receive)
	return w
}

// boot starts the worker with an empty runtime: a node that restarts has
// lost its containers, and its agent starts what it is assigned again.
func (w *worker) boot() {
	w.alive = true
	w.epoch++
	w.rt = fake.NewRuntime(w.c.eng, w.knobs())
	w.agent = agent.New(w.id, w.rt)
	w.linger = nil
	if w.c.cfg.Broken == BrokenSecretsLinger {
		w.linger = &lingeringRuntime{Runtime: w.rt, held: map[string]map[string][]byte{}}
		w.agent = agent.New(w.id, w.linger)
	}
	w.unsent, w.assigns, w.waiting = nil, nil, false
	w.beat()
}

// knobs are the runtime knobs for the containers the worker starts now: the
// cluster's, unhealthy while an unhealthy fault lasts (a restart does not
// cure it).
func (w *worker) knobs() fake.Knobs {
	k := w.c.cfg.Runtime
	k.Unhealthy = w.c.eng.Elapsed() < w.sickUntil
	return k
}

func (w *worker) crash() {
	w.alive = false
	w.epoch++
	w.rt = nil // its containers die with it, and the secrets in their tmpfs
	w.linger = nil
}

func (w *worker) beat() {
	if w.waiting {
		// The last heartbeat got no answer: try the next manager.
		w.target = (w.target + 1) % len(w.c.managers)
	}
	w.step()
	w.waiting = true
	w.c.net.Send(w.id, w.c.managers[w.target].id, heartbeat{Statuses: w.unsent})
	w.c.eng.After(HeartbeatInterval, w.guard(w.beat))
}

// step runs the agent on the assignments last received.
func (w *worker) step() {
	sts, err := w.agent.Step(w.assigns)
	if err != nil {
		panic(err)
	}
	w.unsent = sts
	for _, st := range sts {
		w.c.eng.Mix(uint64(len(st.TaskID)), uint64(len(st.ActualState)), uint64(st.ExitCode))
	}
	w.c.workerStepped(w)
}

func (w *worker) receive(from string, msg any) {
	if !w.alive {
		return
	}
	r, ok := msg.(heartbeatReply)
	if !ok {
		return
	}
	if !r.OK {
		// Follow the hint; without one, the next beat tries the next
		// manager.
		for i, m := range w.c.managers {
			if m.id == r.Leader {
				w.target, w.waiting = i, false
			}
		}
		return
	}
	w.waiting = false
	w.agent.Sent(r.Sent)
	w.assigns = r.Assignments
	w.step()
}
