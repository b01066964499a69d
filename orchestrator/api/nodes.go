package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// The node endpoints, the workers' heartbeat and the task list.

// findNode finds a node by ID, else by hostname. Hostnames need not be
// unique, so a hostname that several nodes share names none of them.
func findNode(rd state.Reader, key string) (*types.Node, error) {
	n, err := rd.GetNode(key)
	if !errors.Is(err, state.ErrNotFound) {
		return n, err
	}
	all, err := rd.ListNodes()
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, n := range all {
		if n.Hostname == key {
			ids = append(ids, n.ID)
		}
	}
	switch len(ids) {
	case 0:
		return nil, fmt.Errorf("%w: no node with ID or hostname %q: list the nodes with `warren node ls`", state.ErrNotFound, key)
	case 1:
		return rd.GetNode(ids[0])
	}
	return nil, fmt.Errorf("%w: hostname %q is ambiguous: nodes %s have it; name the node by its ID",
		ErrBadRequest, key, strings.Join(ids, ", "))
}

func (h *handler) listNodes(w http.ResponseWriter, r *http.Request) error {
	nodes, err := read(h, r, state.Reader.ListNodes)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, orEmpty(nodes))
}

func (h *handler) getNode(w http.ResponseWriter, r *http.Request) error {
	n, err := read(h, r, func(rd state.Reader) (*types.Node, error) { return findNode(rd, r.PathValue("id")) })
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, n)
}

// resolveNode finds the node a write names, in the leader's state.
func (h *handler) resolveNode(r *http.Request) (*types.Node, error) {
	return view(r.Context(), h.Backend, false, func(rd state.Reader) (*types.Node, error) {
		return findNode(rd, r.PathValue("id"))
	})
}

func (h *handler) updateNode(w http.ResponseWriter, r *http.Request) error {
	var upd NodeUpdate
	if err := decodeBody(w, r, &upd); err != nil {
		return err
	}
	n, err := h.resolveNode(r)
	if err != nil {
		return err
	}
	// UpdateNode replaces the whole node, so a heartbeat status committed
	// between this read and the write is overwritten with the one read.
	// That is tolerable: the leader's dispatcher compares the state with
	// what it has heard from the node and sets the status right on its
	// next check. A field-wise command in fsm would close the gap.
	if upd.Availability != nil {
		n.Availability = *upd.Availability
	}
	if upd.Labels != nil {
		n.Labels = upd.Labels
	}
	if err := h.Backend.Apply(r.Context(), &fsm.UpdateNode{Node: n}); err != nil {
		return err
	}
	return reply(w, http.StatusOK, n)
}

func (h *handler) removeNode(w http.ResponseWriter, r *http.Request) error {
	force, err := boolParam(r, "force")
	if err != nil {
		return err
	}
	n, err := h.resolveNode(r)
	if err != nil {
		return err
	}
	if err := h.Backend.RemoveNode(r.Context(), n.ID, force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) heartbeat(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var req HeartbeatRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	// The certificate proves who sends the report, not whose tasks it is
	// about: a node reports its own tasks only.
	for i := range req.Statuses {
		st := &req.Statuses[i]
		switch st.NodeID {
		case "":
			st.NodeID = id
		case id:
		default:
			return fmt.Errorf("%w: node %s reported task %s as node %s: a node reports only its own tasks", ErrForbidden, id, st.TaskID, st.NodeID)
		}
	}
	resp, err := h.Backend.Heartbeat(r.Context(), id, &req)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, resp)
}

func (h *handler) setRole(role string) endpoint {
	return func(w http.ResponseWriter, r *http.Request) error {
		n, err := h.resolveNode(r)
		if err != nil {
			return err
		}
		if err := h.Backend.SetRole(r.Context(), n.ID, role); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (h *handler) certificate(w http.ResponseWriter, r *http.Request) error {
	resp, err := h.Backend.Certificate(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, resp)
}

func (h *handler) listContainers(w http.ResponseWriter, r *http.Request) error {
	service, node := r.URL.Query().Get("service"), r.URL.Query().Get("node")
	tasks, err := read(h, r, func(rd state.Reader) ([]*types.Container, error) {
		switch {
		case service != "":
			tasks, err := rd.ListContainersByService(service)
			if node == "" || err != nil {
				return tasks, err
			}
			var onNode []*types.Container
			for _, t := range tasks {
				if t.NodeID == node {
					onNode = append(onNode, t)
				}
			}
			return onNode, nil
		case node != "":
			return rd.ListContainersByNode(node)
		}
		return rd.ListContainers()
	})
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, orEmpty(tasks))
}

// ListNodes lists the nodes; stale reads the answering manager's state,
// which may lag the leader's but needs no leader.
func (c *Client) ListNodes(ctx context.Context, stale bool) ([]*types.Node, error) {
	return fetch[[]*types.Node](ctx, c, get(Prefix+"/nodes", staleQuery(stale)))
}

// GetNode returns the node with ID or hostname key.
func (c *Client) GetNode(ctx context.Context, key string) (*types.Node, error) {
	return fetch[*types.Node](ctx, c, get(Prefix+"/nodes/"+url.PathEscape(key), nil))
}

// nodeUpdateWire is NodeUpdate as the client sends it: Labels is sent even
// when empty, so that an empty map clears the labels (NodeUpdate's
// omitempty would drop it, leaving them as they are); nil goes as null,
// which the server decodes back to nil.
type nodeUpdateWire struct {
	Availability *types.NodeAvailability `json:"availability,omitempty"`
	Labels       map[string]string       `json:"labels"`
}

// UpdateNode changes the availability or labels of the node with ID or
// hostname key, and returns the node as updated.
func (c *Client) UpdateNode(ctx context.Context, key string, upd *NodeUpdate) (*types.Node, error) {
	// Retry-safe: the update sets fields to values, so applying it twice
	// leaves the node as applying it once.
	return fetch[*types.Node](ctx, c, send(http.MethodPatch, Prefix+"/nodes/"+url.PathEscape(key), nodeUpdateWire(*upd), true))
}

// RemoveNode removes the node with ID or hostname key from the cluster;
// without force, a node that is up is refused.
func (c *Client) RemoveNode(ctx context.Context, key string, force bool) error {
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	return c.exchange(ctx, send(http.MethodDelete, Prefix+"/nodes/"+url.PathEscape(key)+encodeQuery(q), nil, true), nil)
}

// Heartbeat tells the leader that nodeID is alive, with its task reports,
// and returns the node's work.
func (c *Client) Heartbeat(ctx context.Context, nodeID string, req *HeartbeatRequest) (*HeartbeatResponse, error) {
	// Retry-safe: a report applied twice changes nothing the second time.
	return fetch[*HeartbeatResponse](ctx, c, send(http.MethodPost, Prefix+"/nodes/"+url.PathEscape(nodeID)+"/heartbeat", req, true))
}

// PromoteNode makes the worker with ID or hostname key a manager; the node
// starts its manager half on its next heartbeat.
func (c *Client) PromoteNode(ctx context.Context, key string) error {
	return c.exchange(ctx, send(http.MethodPost, Prefix+"/nodes/"+url.PathEscape(key)+"/promote", nil, true), nil)
}

// DemoteNode makes the manager with ID or hostname key a worker: it
// leaves raft, then stops its manager half on its next heartbeat.
func (c *Client) DemoteNode(ctx context.Context, key string) error {
	return c.exchange(ctx, send(http.MethodPost, Prefix+"/nodes/"+url.PathEscape(key)+"/demote", nil, true), nil)
}

// Certificate asks for a certificate for nodeID's current role.
func (c *Client) Certificate(ctx context.Context, nodeID string) (*JoinResponse, error) {
	// Retry-safe: a second certificate replaces the first; both are valid.
	return fetch[*JoinResponse](ctx, c, send(http.MethodPost, Prefix+"/nodes/"+url.PathEscape(nodeID)+"/certificate", nil, true))
}

// ListContainers lists the tasks, of one service and on one node when
// serviceID and nodeID are not "".
func (c *Client) ListContainers(ctx context.Context, serviceID, nodeID string, stale bool) ([]*types.Container, error) {
	q := staleQuery(stale)
	if serviceID != "" {
		q.Set("service", serviceID)
	}
	if nodeID != "" {
		q.Set("node", nodeID)
	}
	return fetch[[]*types.Container](ctx, c, get(Prefix+"/containers", q))
}
