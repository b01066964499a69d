package api

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
)

// The cluster endpoints: health, cluster info, joining, join tokens.

func (h *handler) health(w http.ResponseWriter, _ *http.Request) error {
	return reply(w, http.StatusOK, h.Backend.Health())
}

func (h *handler) cluster(w http.ResponseWriter, r *http.Request) error {
	info, err := h.Backend.Cluster(r.Context())
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, info)
}

func (h *handler) join(w http.ResponseWriter, r *http.Request) error {
	var req JoinRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	resp, err := h.Backend.Join(r.Context(), &req)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, resp)
}

func (h *handler) addManager(w http.ResponseWriter, r *http.Request) error {
	var req AddManagerRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.NodeID == "" {
		return fmt.Errorf("%w: node_id is empty: name the manager that asks to become a voter", ErrBadRequest)
	}
	// The guard checked the role; only the body says which node this is.
	if err := h.authorize(r, req.NodeID, RoleManager); err != nil {
		return err
	}
	if err := h.Backend.AddManager(r.Context(), &req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) joinToken(rotate bool) endpoint {
	return func(w http.ResponseWriter, r *http.Request) error {
		role := r.PathValue("role")
		if role != RoleWorker && role != RoleManager {
			return fmt.Errorf("%w: there is no join token for role %q: use %s or %s", ErrBadRequest, role, RoleWorker, RoleManager)
		}
		token, err := h.Backend.JoinToken(r.Context(), role, rotate)
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, &JoinToken{Role: role, Token: token})
	}
}

// Health asks the manager at addr, and only it, how it is: no failover and
// no leader following, as the caller wants that manager's own view.
func (c *Client) Health(ctx context.Context, addr string) (*Health, error) {
	return fetch[*Health](ctx, c, &call{method: http.MethodGet, path: Prefix + "/health", only: addr, retrySafe: true})
}

// Cluster describes the cluster: its managers, leader and CA.
func (c *Client) Cluster(ctx context.Context) (*ClusterInfo, error) {
	return fetch[*ClusterInfo](ctx, c, get(Prefix+"/cluster", nil))
}

// Join admits this node to the cluster with req's token.
func (c *Client) Join(ctx context.Context, req *JoinRequest) (*JoinResponse, error) {
	// Not retry-safe: a join that reached the leader registered a node and
	// issued it a certificate; a second one would register another.
	return fetch[*JoinResponse](ctx, c, send(http.MethodPost, Prefix+"/join", req, false))
}

// Join admits a node to the cluster through the manager at addr (following
// it to the leader), for a node that has no client yet: tlsCfg carries no
// certificate and must pin the cluster's CA, from the join token's digest.
// It does not wait for a leader to be elected: without one it fails with an
// error wrapping ErrNoLeader, and the caller may try again.
func Join(ctx context.Context, addr string, tlsCfg *tls.Config, req *JoinRequest) (*JoinResponse, error) {
	c, err := newClient(ClientConfig{Managers: []string{addr}, TLS: tlsCfg})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Join(ctx, req)
}

// AddManager asks the leader to make the joined manager req.NodeID a raft
// voter; the client's certificate must be that manager's.
func (c *Client) AddManager(ctx context.Context, req *AddManagerRequest) error {
	// Retry-safe: adding a voter that already is one changes nothing.
	return c.exchange(ctx, send(http.MethodPost, Prefix+"/managers", req, true), nil)
}

// JoinToken returns the token that joins a node of role (RoleWorker or
// RoleManager).
func (c *Client) JoinToken(ctx context.Context, role string) (string, error) {
	return joinToken(ctx, c, get(Prefix+"/cluster/join-token/"+url.PathEscape(role), nil))
}

// RotateJoinToken replaces role's join token and returns the new one: the
// old one stops working.
func (c *Client) RotateJoinToken(ctx context.Context, role string) (string, error) {
	// Retry-safe as far as the caller can tell: rotating twice leaves a
	// fresh token, the one the last answer carries.
	return joinToken(ctx, c, send(http.MethodPost, Prefix+"/cluster/join-token/"+url.PathEscape(role)+"/rotate", nil, true))
}

func joinToken(ctx context.Context, c *Client, cl *call) (string, error) {
	t, err := fetch[*JoinToken](ctx, c, cl)
	if err != nil {
		return "", err
	}
	return t.Token, nil
}
