package raftsim

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// The objects clients work on are records of the real store, each
// identified by a key "secret/ID" or "service/ID" and holding one value:
// a secret's data, or a service's label "v". Every write carries a value
// no other write carries, so a value names the write that made it.

// opKind is what a client operation does.
type opKind int

const (
	opCreate opKind = iota // CreateSecret or CreateService: once per key
	opUpdate               // UpdateService: replaces the value
	opRead                 // a linearizable read (Barrier, then the store)
)

func (k opKind) String() string { return [...]string{"create", "update", "read"}[k] }

const (
	secretPrefix  = "secret/"
	servicePrefix = "service/"
	valueLabel    = "v"
)

// command is the fsm command of a write.
func command(op opKind, key, value string, now time.Time) fsm.Command {
	switch {
	case strings.HasPrefix(key, secretPrefix):
		id := strings.TrimPrefix(key, secretPrefix)
		return &fsm.CreateSecret{Secret: &types.Secret{ID: id, Name: id, Data: []byte(value), CreatedAt: now, UpdatedAt: now}}
	default:
		id := strings.TrimPrefix(key, servicePrefix)
		svc := &types.Service{
			ID: id, Name: id, Image: "busybox:1.36", Replicas: 1,
			Mode: types.ModeReplicated, DeployStrategy: types.DeployRolling,
			Labels: map[string]string{valueLabel: value}, CreatedAt: now, UpdatedAt: now,
		}
		if op == opCreate {
			return &fsm.CreateService{Service: svc}
		}
		return &fsm.UpdateService{Service: svc}
	}
}

// written is the key and value a command writes, for the writes clients
// make; ok is false for any other command.
func written(c fsm.Command) (key, value string, ok bool) {
	switch c := c.(type) {
	case *fsm.CreateSecret:
		return secretPrefix + c.Secret.ID, string(c.Secret.Data), true
	case *fsm.CreateService:
		return servicePrefix + c.Service.ID, c.Service.Labels[valueLabel], true
	case *fsm.UpdateService:
		return servicePrefix + c.Service.ID, c.Service.Labels[valueLabel], true
	}
	return "", "", false
}

// readObject reads an object from a manager's store.
func readObject(s state.Reader, key string) (exists bool, value string, err error) {
	switch {
	case strings.HasPrefix(key, secretPrefix):
		sec, err := s.GetSecret(strings.TrimPrefix(key, secretPrefix))
		if errors.Is(err, state.ErrNotFound) {
			return false, "", nil
		} else if err != nil {
			return false, "", err
		}
		return true, string(sec.Data), nil
	case strings.HasPrefix(key, servicePrefix):
		svc, err := s.GetService(strings.TrimPrefix(key, servicePrefix))
		if errors.Is(err, state.ErrNotFound) {
			return false, "", nil
		} else if err != nil {
			return false, "", err
		}
		return true, svc.Labels[valueLabel], nil
	}
	return false, "", fmt.Errorf("raftsim: no object %q", key)
}

// opInput and opOutput are a history operation's input and output.
type opInput struct {
	op    opKind
	key   string
	value string // for writes
}

type opOutput struct {
	status status // stOK, stExists, stNotFound or stUnknown
	exists bool   // for reads
	value  string // for reads
}

// object is the model's state of one key.
type object struct {
	exists bool
	value  string
}

// objectModel is the sequential specification of one record: created at
// most once, replaced by updates, read whole. A write whose outcome is
// unknown may take effect at any point after its call, or never: its
// return time is infinite, so porcupine may place it after everything
// else, and any state accepts it.
var objectModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(opInput).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range slices.Sorted(maps.Keys(byKey)) {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return object{} },
	Step: func(st, in, out any) (bool, any) {
		s, i, o := st.(object), in.(opInput), out.(opOutput)
		switch i.op {
		case opCreate:
			switch o.status {
			case stOK:
				return !s.exists, object{exists: true, value: i.value}
			case stExists:
				return s.exists, s
			case stUnknown:
				if s.exists {
					return true, s
				}
				return true, object{exists: true, value: i.value}
			}
		case opUpdate:
			switch o.status {
			case stOK:
				return s.exists, object{exists: true, value: i.value}
			case stNotFound:
				return !s.exists, s
			case stUnknown:
				if !s.exists {
					return true, s
				}
				return true, object{exists: true, value: i.value}
			}
		case opRead:
			return o.status == stOK && o.exists == s.exists && o.value == s.value, s
		}
		return false, s
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(opInput), out.(opOutput)
		if i.op == opRead {
			if !o.exists {
				return fmt.Sprintf("read(%s) -> absent", i.key)
			}
			return fmt.Sprintf("read(%s) -> %s", i.key, o.value)
		}
		return fmt.Sprintf("%s(%s, %s) -> %s", i.op, i.key, i.value, o.status)
	},
	DescribeState: func(st any) string {
		s := st.(object)
		if !s.exists {
			return "absent"
		}
		return s.value
	},
}

// History is the client-visible history of a run. Call and return times
// are ticks of one counter shared by every client, taken just before a
// request leaves and just after its answer arrives: an operation that
// returned before another was called has the smaller return tick, so the
// real-time order porcupine checks is the order that happened (virtual
// time alone cannot say it, as many things happen at one virtual instant).
type History struct {
	clock atomic.Int64

	mu  sync.Mutex
	ops []porcupine.Operation
}

func (h *History) tick() int64 { return h.clock.Add(1) }

// add records an operation; ret is math.MaxInt64 for an unknown outcome.
func (h *History) add(client int, in opInput, out opOutput, call, ret int64, at time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret, Metadata: at})
}

// Operations is a copy of the history so far.
func (h *History) Operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// HistoryStats counts a history's operations by outcome.
type HistoryStats struct {
	Ops, Writes, Reads, Unknown int
}

// Stats counts the history's operations.
func (h *History) Stats() HistoryStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	var s HistoryStats
	for _, op := range h.ops {
		s.Ops++
		if op.Input.(opInput).op == opRead {
			s.Reads++
		} else {
			s.Writes++
		}
		if op.Return == math.MaxInt64 {
			s.Unknown++
		}
	}
	return s
}

// linearizabilityTimeout bounds the check of one history.
const linearizabilityTimeout = 30 * time.Second

// ErrNotLinearizable is wrapped by the error for a history no order of
// the operations explains.
var ErrNotLinearizable = errors.New("raftsim: the client history is not linearizable")

// CheckLinearizable checks the history with porcupine, one model per
// object. It must run outside a synctest bubble (porcupine's timeout is a
// real timer). When visualization is not nil and the check fails, the
// porcupine page showing why is written to it.
func (h *History) CheckLinearizable(visualization io.Writer) error {
	ops := h.Operations()
	switch porcupine.CheckOperationsTimeout(objectModel, ops, linearizabilityTimeout) {
	case porcupine.Ok:
		return nil
	case porcupine.Unknown:
		return fmt.Errorf("raftsim: the linearizability check of %d operations did not finish within %v", len(ops), linearizabilityTimeout)
	}
	// Again, verbosely (slower: every object is checked to the end), to
	// say which objects fail.
	_, info := porcupine.CheckOperationsVerbose(objectModel, ops, linearizabilityTimeout)
	if visualization != nil {
		_ = porcupine.Visualize(objectModel, info, visualization)
	}
	return fmt.Errorf("%w: %s", ErrNotLinearizable, describeIllegal(ops, info))
}

// describeIllegal names the objects whose histories porcupine could not
// linearize, with their operations.
func describeIllegal(ops []porcupine.Operation, info porcupine.LinearizationInfo) string {
	parts := objectModel.Partition(ops)
	var bad []string
	for i, part := range info.PartialLinearizations() {
		if i >= len(parts) {
			break
		}
		if longest(part) < len(parts[i]) {
			key := parts[i][0].Input.(opInput).key
			var desc []string
			for _, op := range parts[i] {
				ret := "∞"
				if op.Return != math.MaxInt64 {
					ret = fmt.Sprint(op.Return)
				}
				desc = append(desc, fmt.Sprintf("[%d,%s] c%d %s at %v", op.Call, ret, op.ClientId,
					objectModel.DescribeOperation(op.Input, op.Output), op.Metadata))
			}
			bad = append(bad, fmt.Sprintf("object %s: %s", key, strings.Join(desc, "; ")))
		}
		if len(bad) == 3 {
			break
		}
	}
	return strings.Join(bad, "\n")
}

func longest(partials [][]int) int {
	n := 0
	for _, p := range partials {
		n = max(n, len(p))
	}
	return n
}
