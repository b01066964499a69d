package api

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/state"
)

// HandlerConfig is what NewHandler serves the API with.
type HandlerConfig struct {
	// Backend is the manager the handler runs on.
	Backend Backend
	// Clock stamps the records the API creates and replaces.
	Clock orchestrator.Clock
	// RoleOf returns the role (RoleAdmin, RoleManager or RoleWorker) of a
	// client certificate crypto/tls has verified against the cluster's CA.
	RoleOf func(*x509.Certificate) string
	// Log gets the errors no client sees (a stream that broke) and the
	// internal errors; nil discards them.
	Log *slog.Logger
	// Node serves this node's own endpoints (its tasks' logs) to the
	// other managers; nil on a manager that runs no tasks.
	Node NodeBackend
}

// MaxBodyBytes bounds a request body, so a client cannot make a manager
// buffer without end; the largest legitimate body, a service, is a few KiB.
const MaxBodyBytes = 1 << 20

type handler struct {
	HandlerConfig
	mux *http.ServeMux
}

// endpoint serves one request. It writes only on success: an error it
// returns is sent as an Error body with the status of its code.
type endpoint func(w http.ResponseWriter, r *http.Request) error

// guard authorizes a request before its endpoint reads the body.
type guard func(r *http.Request) error

// NewHandler returns the API of the manager behind cfg.Backend. The caller
// serves it over TLS 1.3 with tls.VerifyClientCertIfGiven: the handler
// itself checks, per endpoint, that a certificate was given and what role
// it carries. It panics if Backend, Clock or RoleOf is nil: a wiring
// mistake, better found at start than on the first request.
func NewHandler(cfg HandlerConfig) http.Handler {
	if cfg.Backend == nil || cfg.Clock == nil || cfg.RoleOf == nil {
		panic("api: NewHandler needs HandlerConfig.Backend, Clock and RoleOf")
	}
	h := newBareHandler(cfg)
	const p = Prefix
	h.handle("GET "+p+"/health", anyone, h.health)
	h.handle("POST "+p+"/join", anyone, h.join) // the token in the body authenticates
	h.handle("POST "+p+"/managers", h.role(RoleManager), h.addManager)
	h.handle("GET "+p+"/cluster", h.admin, h.cluster)
	h.handle("GET "+p+"/cluster/join-token/{role}", h.admin, h.joinToken(false))
	h.handle("POST "+p+"/cluster/join-token/{role}/rotate", h.admin, h.joinToken(true))
	h.handle("GET "+p+"/cluster/backup", h.admin, h.backup)
	h.handle("GET "+p+"/nodes", h.admin, h.listNodes)
	h.handle("GET "+p+"/nodes/{id}", h.admin, h.getNode)
	h.handle("PATCH "+p+"/nodes/{id}", h.admin, h.updateNode)
	h.handle("DELETE "+p+"/nodes/{id}", h.admin, h.removeNode)
	h.handle("POST "+p+"/nodes/{id}/heartbeat", h.nodeItself, h.heartbeat)
	h.handle("POST "+p+"/nodes/{id}/certificate", h.nodeItself, h.certificate)
	h.handle("POST "+p+"/nodes/{id}/promote", h.admin, h.setRole(RoleManager))
	h.handle("POST "+p+"/nodes/{id}/demote", h.admin, h.setRole(RoleWorker))
	h.handle("GET "+p+"/containers", h.admin, h.listContainers)
	h.handle("GET "+p+"/events", h.admin, h.events)
	h.handle("GET "+p+"/services/{key}/logs", h.admin, h.serviceLogs)
	serveNode(h)
	serveRecords(h, services)
	serveRecords(h, volumes)
	serveRecords(h, networks)
	serveSecrets(h)
	serveApply(h)
	serveSecretKeys(h)
	// Everything else gets an Error body too, so the client can say what
	// went wrong instead of quoting the mux's plain-text 404.
	h.handle("/", anyone, noEndpoint)
	return h.mux
}

// newBareHandler is a handler with no endpoint yet.
func newBareHandler(cfg HandlerConfig) *handler {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &handler{HandlerConfig: cfg, mux: http.NewServeMux()}
}

func (h *handler) handle(pattern string, allow guard, fn endpoint) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		err := allow(r)
		if err == nil {
			err = fn(w, r)
		}
		if err != nil {
			h.fail(w, r, err)
		}
	})
}

// fail answers err with its code's status and an Error body.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorAnswer(err)
	level := slog.LevelDebug
	if body.Code == CodeInternal && r.Context().Err() == nil {
		level = slog.LevelError
	}
	h.Log.Log(r.Context(), level, "api: request refused",
		"method", r.Method, "path", r.URL.Path, "peer", peerName(r), "code", body.Code, "err", err)
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, v = http.StatusInternalServerError, &Error{Code: CodeInternal, Message: fmt.Sprintf("api: encode the answer: %v", err)}
		data, _ = json.Marshal(v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// A failed write means the client went away; there is nobody to tell.
	_, _ = w.Write(append(data, '\n'))
}

// reply sends v as a JSON answer; it returns nil so endpoints can end
// with `return reply(...)`.
func reply(w http.ResponseWriter, status int, v any) error {
	writeJSON(w, status, v)
	return nil
}

// orEmpty makes an empty list encode as [] rather than null, for readers
// of the JSON other than this package's client.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func noEndpoint(_ http.ResponseWriter, r *http.Request) error {
	return fmt.Errorf("%w: no endpoint %s %s: this manager serves the Warren API under %s; check that the client and the manager run the same version of warren",
		ErrBadRequest, r.Method, r.URL.Path, Prefix)
}

func anyone(*http.Request) error { return nil }

func (h *handler) admin(r *http.Request) error { return h.authorize(r, "", RoleAdmin) }

func (h *handler) role(roles ...string) guard {
	return func(r *http.Request) error { return h.authorize(r, "", roles...) }
}

// nodeItself lets a node act for itself only: the certificate must be the
// node's own.
func (h *handler) nodeItself(r *http.Request) error {
	return h.authorize(r, r.PathValue("id"), RoleWorker, RoleManager)
}

// authorize checks the client certificate: one of roles and, when node is
// not "", issued to that node (its common name).
func (h *handler) authorize(r *http.Request, node string, roles ...string) error {
	need := "a certificate of role " + strings.Join(roles, " or ")
	if node != "" {
		need += " issued to node " + node
	}
	endpoint := r.Method + " " + r.URL.Path
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return fmt.Errorf("%w: %s needs %s, and the request came without a client certificate: connect with one the cluster's CA issued",
			ErrUnauthorized, endpoint, need)
	}
	cert := r.TLS.PeerCertificates[0]
	if role := h.RoleOf(cert); !slices.Contains(roles, role) {
		return fmt.Errorf("%w: %s needs %s; the certificate of %q has role %q: connect with a certificate of the right role",
			ErrForbidden, endpoint, need, cert.Subject.CommonName, role)
	}
	if node != "" && cert.Subject.CommonName != node {
		return fmt.Errorf("%w: %s needs %s; this certificate is issued to %q, and a node may act only for itself",
			ErrForbidden, endpoint, need, cert.Subject.CommonName)
	}
	return nil
}

func peerName(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	return r.TLS.PeerCertificates[0].Subject.CommonName
}

// decodeBody reads the JSON request body into v, strictly: a misspelt
// field is an error rather than a setting silently ignored.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeBodyUpTo(w, r, v, MaxBodyBytes)
}

// decodeBodyUpTo is decodeBody with a limit of its own.
func decodeBodyUpTo(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	what := strings.TrimPrefix(fmt.Sprintf("%T", v), "*")
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); !errors.Is(extra, io.EOF) {
			return fmt.Errorf("%w: the request body goes on after the JSON %s: send exactly one value", ErrBadRequest, what)
		}
		return nil
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return fmt.Errorf("%w: the request body is larger than %d bytes", ErrBadRequest, limit)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: the request body is empty: send a JSON %s", ErrBadRequest, what)
	}
	return fmt.Errorf("%w: the request body is not a valid JSON %s: %v", ErrBadRequest, what, err)
}

// boolParam reads an optional boolean query parameter.
func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%w: ?%s=%s is not a boolean: use true or false", ErrBadRequest, name, v)
	}
	return b, nil
}

// view runs fn on the backend's state and returns its result.
func view[R any](ctx context.Context, b Backend, stale bool, fn func(state.Reader) (R, error)) (R, error) {
	var out R
	err := b.Read(ctx, stale, func(rd state.Reader) error {
		var err error
		out, err = fn(rd)
		return err
	})
	return out, err
}

// read serves a read endpoint: linearizable unless the request asks for
// ?stale=true, which any manager answers from its own state (faster, and
// possible without a leader, but it may miss the latest writes).
func read[R any](h *handler, r *http.Request, fn func(state.Reader) (R, error)) (R, error) {
	stale, err := boolParam(r, "stale")
	if err != nil {
		var zero R
		return zero, err
	}
	return view(r.Context(), h.Backend, stale, fn)
}
