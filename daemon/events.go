package daemon

import (
	"context"
	"errors"
	"sync"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
)

// errBehind ends the event stream of a reader that fell too far behind:
// raft's FSM goroutine publishes events and must never wait for a reader.
var errBehind = errors.New("daemon: the event stream fell behind by more than 4096 events; watch again, and list what you need first")

const subscriberBuffer = 4096

// events fans applied commands out to the API's watchers.
type events struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	ch     chan api.Event
	behind chan struct{} // closed when the subscriber is dropped
}

func newEvents() *events { return &events{subs: map[*subscriber]struct{}{}} }

// publish never blocks: a watcher whose buffer is full is dropped.
func (e *events) publish(index uint64, c fsm.Command) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.subs) == 0 {
		return
	}
	ev := eventOf(index, c)
	for s := range e.subs {
		select {
		case s.ch <- ev:
		default:
			delete(e.subs, s)
			close(s.behind)
		}
	}
}

// watch calls fn for each event until ctx ends, fn fails or the watcher
// falls behind.
func (e *events) watch(ctx context.Context, fn func(api.Event) error) error {
	s := &subscriber{ch: make(chan api.Event, subscriberBuffer), behind: make(chan struct{})}
	e.mu.Lock()
	e.subs[s] = struct{}{}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.subs, s)
		e.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-s.ch:
			if err := fn(ev); err != nil {
				return err
			}
		case <-s.behind:
			// Deliver what was buffered before saying so.
			for {
				select {
				case ev := <-s.ch:
					if err := fn(ev); err != nil {
						return err
					}
				default:
					return errBehind
				}
			}
		}
	}
}

// eventOf names what a command changes.
func eventOf(index uint64, c fsm.Command) api.Event {
	ev := api.Event{Index: index, Command: c.Kind().String()}
	switch c := c.(type) {
	case *fsm.CreateService:
		ev.Object, ev.ID = "service", c.Service.ID
	case *fsm.UpdateService:
		ev.Object, ev.ID = "service", c.Service.ID
	case *fsm.DeleteService:
		ev.Object, ev.ID = "service", c.ID
	case *fsm.CreateVolume:
		ev.Object, ev.ID = "volume", c.Volume.ID
	case *fsm.UpdateVolume:
		ev.Object, ev.ID = "volume", c.Volume.ID
	case *fsm.DeleteVolume:
		ev.Object, ev.ID = "volume", c.ID
	case *fsm.CreateSecret:
		ev.Object, ev.ID = "secret", c.Secret.ID
	case *fsm.UpdateSecret:
		ev.Object, ev.ID = "secret", c.Secret.ID
	case *fsm.DeleteSecret:
		ev.Object, ev.ID = "secret", c.ID
	case *fsm.CreateNetwork:
		ev.Object, ev.ID = "network", c.Network.ID
	case *fsm.UpdateNetwork:
		ev.Object, ev.ID = "network", c.Network.ID
	case *fsm.DeleteNetwork:
		ev.Object, ev.ID = "network", c.ID
	case *fsm.RegisterNode:
		ev.Object, ev.ID = "node", c.Node.ID
	case *fsm.UpdateNode:
		ev.Object, ev.ID = "node", c.Node.ID
	case *fsm.SetNodeStatus:
		ev.Object, ev.ID = "node", c.NodeID
	case *fsm.DeleteNode:
		ev.Object, ev.ID = "node", c.ID
	case *fsm.SetCluster:
		ev.Object, ev.ID = "cluster", c.Cluster.ID
	case *fsm.ReportTasks, *fsm.PlanTasks:
		ev.Object = "container"
	}
	return ev
}
