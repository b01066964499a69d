package api

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Task logs. Each node keeps its tasks' output and serves it to the
// managers only (GET /v1/node/tasks/{task}/logs); a manager relays a
// service's logs to an admin (GET /v1/services/{key}/logs), reading each
// task from its node and merging the streams line by line.

// AllLines is LogOptions.Tail for the whole log.
const AllLines = -1

// LogOptions say which part of a log to stream.
type LogOptions struct {
	// Follow keeps the stream open after the end of the log, sending what
	// is appended, until the client goes away.
	Follow bool
	// Tail starts with the last Tail lines; negative (AllLines) starts at
	// the beginning.
	Tail int
}

func (o LogOptions) query() url.Values {
	q := url.Values{}
	if o.Follow {
		q.Set("follow", "true")
	}
	if o.Tail >= 0 {
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	return q
}

// logOptions reads ?follow=true|false and ?tail=N|all (all when absent).
func logOptions(r *http.Request) (LogOptions, error) {
	follow, err := boolParam(r, "follow")
	if err != nil {
		return LogOptions{}, err
	}
	opts := LogOptions{Follow: follow, Tail: AllLines}
	switch v := r.URL.Query().Get("tail"); v {
	case "", "all":
	default:
		n, err := strconv.Atoi(v)
		if err != nil {
			return LogOptions{}, fmt.Errorf("%w: ?tail=%s is not a number of lines: use N >= 0, or all", ErrBadRequest, v)
		}
		opts.Tail = max(n, AllLines)
	}
	return opts, nil
}

// LogEntry is one line of GET /v1/services/{key}/logs: a line of a task's
// output, or, with Error set, why the task's output cannot be read (its
// node is unreachable, its runtime keeps no logs). Docker prints the
// former as "TASK@NODE | LINE".
type LogEntry struct {
	Task   string `json:"task"`
	NodeID string `json:"node_id"`
	// Node is the node's hostname.
	Node  string `json:"node"`
	Line  string `json:"line,omitempty"`
	Error string `json:"error,omitempty"`
}

// LogTask is a task whose output a manager relays, with the node it was
// placed on, as the manager's state has them.
type LogTask struct {
	Task *types.Container
	Node *types.Node
}

// NodeBackend is what a node serves about itself to the managers: its
// tasks' output. Every node has one; a node that runs no tasks answers
// state.ErrNotFound, and one whose runtime keeps no logs (the simulated
// one) errors.ErrUnsupported.
type NodeBackend interface {
	// OpenTaskLog opens the output of task taskID on this node, from its
	// last opts.Tail lines. Reading it returns io.EOF at the end of the
	// log, or, with opts.Follow, waits for more until ctx ends. A node
	// with no log of the task answers an error wrapping
	// state.ErrNotFound.
	OpenTaskLog(ctx context.Context, taskID string, opts LogOptions) (io.ReadCloser, error)
}

// ErrNotManager is wrapped by the error a worker answers an API request
// with: it serves its task logs to the managers, nothing else.
var ErrNotManager = errors.New("api: this node is a worker, not a manager")

// serveNode registers the endpoints every node serves to the managers.
func serveNode(h *handler) {
	h.handle("GET "+Prefix+"/node/tasks/{task}/logs", h.role(RoleManager), h.taskLog)
}

// NodeHandlerConfig is what NewNodeHandler serves a worker's endpoints
// with.
type NodeHandlerConfig struct {
	// Node is the node's own side: its tasks' logs.
	Node NodeBackend
	// RoleOf is as in HandlerConfig.
	RoleOf func(*x509.Certificate) string
	// Log gets the errors no client sees; nil discards them.
	Log *slog.Logger
}

// NewNodeHandler returns what a worker serves on its API address: the
// node endpoints for the managers (GET /v1/node/...), and to every other
// request an error wrapping ErrNotManager. It is served over TLS 1.3 and
// requires a client certificate of the cluster's CA; the endpoints check
// the role. It panics if Node or RoleOf is nil.
func NewNodeHandler(cfg NodeHandlerConfig) http.Handler {
	if cfg.Node == nil || cfg.RoleOf == nil {
		panic("api: NewNodeHandler needs NodeHandlerConfig.Node and RoleOf")
	}
	h := newBareHandler(HandlerConfig{Node: cfg.Node, RoleOf: cfg.RoleOf, Log: cfg.Log})
	serveNode(h)
	h.handle("/", anyone, func(_ http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("%w: it serves only the managers' requests for its tasks' logs, not %s %s: send API requests to a manager's API address (`warren node ls` lists the managers)",
			ErrNotManager, r.Method, r.URL.Path)
	})
	return h.mux
}

// taskLog streams a task's log file as it is: the task's stdout and
// stderr, interleaved as written.
func (h *handler) taskLog(w http.ResponseWriter, r *http.Request) error {
	opts, err := logOptions(r)
	if err != nil {
		return err
	}
	task := r.PathValue("task")
	if h.Node == nil {
		return fmt.Errorf("%w: this node runs no tasks, so it has no log of task %s", state.ErrNotFound, task)
	}
	rc, err := h.Node.OpenTaskLog(r.Context(), task, opts)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Trailer", TrailerError)
	w.WriteHeader(http.StatusOK)
	flusher := http.NewResponseController(w)
	// The status goes now: a followed log may have nothing to send yet.
	_ = flusher.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client left
			}
			if werr := flusher.Flush(); werr != nil {
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			h.endStream(w, r, fmt.Errorf("api: read the log of task %s: %w", task, err))
			return nil
		}
	}
}

// serviceLogs relays the output of a service's tasks from their nodes.
func (h *handler) serviceLogs(w http.ResponseWriter, r *http.Request) error {
	opts, err := logOptions(r)
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	// Any manager answers from its own state (it may lag): logs need no
	// leader, and a follower relays them as well as the leader does.
	tasks, err := view(r.Context(), h.Backend, true, func(rd state.Reader) ([]LogTask, error) {
		svc, err := services.find(rd, key)
		if err != nil {
			return nil, err
		}
		cs, err := rd.ListContainersByService(svc.ID)
		if err != nil {
			return nil, err
		}
		var out []LogTask
		for _, c := range cs {
			if c.NodeID == "" {
				continue // never placed: no output anywhere
			}
			n, err := rd.GetNode(c.NodeID)
			if errors.Is(err, state.ErrNotFound) {
				continue // its node was removed, and its logs with it
			}
			if err != nil {
				return nil, err
			}
			out = append(out, LogTask{Task: c, Node: n})
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(tasks, func(a, b LogTask) int { return cmp.Compare(a.Task.ID, b.Task.ID) })
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Trailer", TrailerError)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // as for events: the header goes before the first line
	enc := json.NewEncoder(w)
	err = h.Backend.RelayLogs(r.Context(), tasks, opts, func(e LogEntry) error {
		if err := enc.Encode(e); err != nil {
			return err
		}
		return rc.Flush()
	})
	h.endStream(w, r, err)
	return nil
}

// ServiceLogs calls fn with each line of output of the tasks of the
// service with ID or name key, merged from their nodes, and with an entry
// carrying Error for each task whose output cannot be read. It returns
// nil once every task's output has been sent; with opts.Follow the
// stream goes on until ctx ends (it then returns ctx's error). It returns
// fn's error as is, and an error wrapping state.ErrNotFound for an
// unknown service.
func (c *Client) ServiceLogs(ctx context.Context, key string, opts LogOptions, fn func(LogEntry) error) error {
	path := recordsPath(types.KindService) + "/" + url.PathEscape(key) + "/logs" + encodeQuery(opts.query())
	resp, err := c.do(ctx, &call{method: http.MethodGet, path: path, retrySafe: true, stream: true})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeStream(ctx, resp, "log stream", "ask again", func() error { return nil }, fn)
}

// TaskLog opens the output of task taskID on the node whose API address
// is addr (GET /v1/node/tasks/{task}/logs): how a manager reads a task's
// log, with its manager certificate. Only that node is asked: no
// failover, no retry. Reading returns io.EOF at the end of the log, or
// the error the node ended the stream with; the caller closes it.
func (c *Client) TaskLog(ctx context.Context, addr, taskID string, opts LogOptions) (io.ReadCloser, error) {
	cl := &call{method: http.MethodGet, path: Prefix + "/node/tasks/" + url.PathEscape(taskID) + "/logs" + encodeQuery(opts.query()),
		retrySafe: true, stream: true, only: addr}
	resp, _, err := c.attempt(ctx, addr, cl, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if refused(err) {
			return nil, fmt.Errorf("%w: the TLS connection to node %s was refused (%w)", ErrUnauthorized, addr, err)
		}
		return nil, fmt.Errorf("%w: node %s cannot be reached: %w", ErrUnavailable, addr, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, readError(addr, resp)
	}
	return &trailed{resp: resp}, nil
}

// trailed is a streamed body whose end reports the error trailer.
type trailed struct{ resp *http.Response }

func (t *trailed) Read(p []byte) (int, error) {
	n, err := t.resp.Body.Read(p)
	if errors.Is(err, io.EOF) {
		if serr := streamError(t.resp); serr != nil {
			return n, serr
		}
	}
	return n, err
}

func (t *trailed) Close() error { return t.resp.Body.Close() }
