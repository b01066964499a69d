package daemon

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	wraft "github.com/warren-orchestrator/warren/backends/raft"
	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/leader"
)

// loop owns the leader's duties (orchestrator/leader): it starts them when
// this manager becomes leader and has applied everything committed before,
// drops them the moment the lead is lost, and runs every call into them on
// its one goroutine, as the core requires.
type loop struct {
	node  *wraft.Node
	clock orchestrator.Clock
	disp  dispatcher.Config
	log   *slog.Logger
	rand  *rand.Rand

	// calls run on the loop's goroutine.
	calls chan func()
	// applied queues the commands raft applied, for the leader; raft's
	// FSM goroutine appends and never waits.
	mu      sync.Mutex
	applied []fsm.Command
	wake    chan struct{}

	leader *leader.Leader // nil while not leading
	gen    uint64         // counts leadership changes; stale callbacks are dropped
	done   chan struct{}
}

func newLoop(node *wraft.Node, clock orchestrator.Clock, disp dispatcher.Config, log *slog.Logger, seed uint64) *loop {
	return &loop{
		node: node, clock: clock, disp: disp, log: log,
		rand:  rand.New(rand.NewPCG(seed, seed^0x5eed)),
		calls: make(chan func(), 64),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
}

// onApply is raft's FSM observer: it must not block.
func (l *loop) onApply(_ uint64, c fsm.Command) {
	l.mu.Lock()
	l.applied = append(l.applied, c)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run serves until ctx ends.
func (l *loop) run(ctx context.Context) {
	defer close(l.done)
	tick := time.NewTicker(leader.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case leading := <-l.node.LeaderCh():
			l.gen++
			l.leader = nil
			if leading {
				l.log.Info("leading: catching up before starting the scheduler, reconciler and dispatcher")
				l.takeOver(ctx, l.gen)
			} else {
				l.log.Info("no longer leading: scheduler, reconciler and dispatcher stopped")
			}
		case <-l.wake:
			l.mu.Lock()
			cmds := l.applied
			l.applied = nil
			l.mu.Unlock()
			if l.leader != nil {
				for _, c := range cmds {
					l.leader.Applied(c)
				}
			}
		case f := <-l.calls:
			f()
		case <-tick.C:
			if l.leader != nil {
				if err := l.leader.Tick(l.clock.Now()); err != nil {
					l.log.Warn("leader tick", "err", err)
				}
			}
		}
	}
}

// takeOver starts the duties once a barrier shows that every entry of
// earlier terms is applied here: the leader must decide on the whole state.
func (l *loop) takeOver(ctx context.Context, gen uint64) {
	go func() {
		if err := l.node.Barrier(); err != nil {
			l.log.Warn("leading, but could not catch up; waiting for the next election", "err", err)
			return
		}
		l.post(ctx, func() {
			if l.gen != gen {
				return
			}
			// Commands applied before the barrier are in the store the
			// new leader reads; drop them from the queue.
			l.mu.Lock()
			l.applied = nil
			l.mu.Unlock()
			l.leader = leader.New(l.node.Store(), proposer{l}, l.disp, l.clock.Now(), l.rand)
			l.log.Info("leader duties started")
		})
	}()
}

// post runs f on the loop, unless the loop has stopped.
func (l *loop) post(ctx context.Context, f func()) {
	select {
	case l.calls <- f:
	case <-ctx.Done():
	case <-l.done:
	}
}

// proposer carries the leader's proposals to raft. done runs on the loop,
// and only if leadership has not changed since: a lost lead drops the
// leader and everything it waited for.
type proposer struct{ l *loop }

func (p proposer) Propose(cmd fsm.Command, done func(error)) {
	gen := p.l.gen
	go func() {
		_, err := p.l.node.Apply(cmd)
		p.l.post(context.Background(), func() {
			if p.l.gen == gen {
				done(err)
			}
		})
	}()
}

// heartbeat hands a worker's heartbeat to the leader and waits for its
// answer: the node's assignments once its reports are committed.
func (l *loop) heartbeat(ctx context.Context, nodeID string, statuses []fsm.TaskStatus) ([]agent.Assignment, []fsm.TaskStatus, error) {
	type answer struct {
		as   []agent.Assignment
		sent []fsm.TaskStatus
		err  error
	}
	ch := make(chan answer, 1)
	l.post(ctx, func() {
		if l.leader == nil {
			ch <- answer{err: errNotLeading}
			return
		}
		l.leader.Heartbeat(nodeID, l.clock.Now(), statuses, func(as []agent.Assignment, sent []fsm.TaskStatus) {
			ch <- answer{as: as, sent: sent}
		})
	})
	select {
	case a := <-ch:
		return a.as, a.sent, a.err
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}
