package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/warren-orchestrator/warren/backends/pki"
	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/api"
)

// The servers a node runs on its API address: the manager's API (which
// includes the node endpoints) on a manager, the node endpoints alone on
// a worker. Both present the node's certificate, as it is renewed, and
// verify clients against the cluster's CA.

// serverTLS is the TLS config of a node's API address. The manager's adds
// AllowNoClientCert (a joining node has only its token) and PresentCA (so
// the joining node can check the CA against its token's digest); a
// worker's requires a certificate, since only managers call it.
func serverTLS(creds *credentials, opts ...pki.Option) *tls.Config {
	return pki.ServerConfig(creds.ca.Pool(), nil, append([]pki.Option{pki.Current(creds.current)}, opts...)...)
}

// roleOf is the role a verified client certificate carries, for the
// handlers' checks.
func roleOf(c *x509.Certificate) string { return pki.Role(c) }

// startServer serves h over TLS on addr until the server is closed.
func startServer(addr string, tlsCfg *tls.Config, h http.Handler, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := srv.Serve(tls.NewListener(ln, tlsCfg)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("API server stopped", "err", err)
		}
	}()
	return srv, nil
}

// startNodeServer serves the node endpoints on a worker's API address, so
// that the managers can read its task logs. A worker that cannot serve
// them still runs its tasks: the failure is logged, not returned.
func (n *Node) startNodeServer() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodeSrv != nil || n.id.Manager {
		return
	}
	log := n.cfg.Log.With("part", "node-api")
	if n.id.APIAddr == "" {
		log.Warn("this worker has no API address, so the managers cannot read its task logs: join it with --api-addr")
		return
	}
	h := api.NewNodeHandler(api.NodeHandlerConfig{Node: n.logs, RoleOf: roleOf, Log: log})
	srv, err := startServer(n.id.APIAddr, serverTLS(n.creds), h, log)
	if err != nil {
		log.Warn("the managers cannot read this worker's task logs: its API address is taken; free it and restart the node", "addr", n.id.APIAddr, "err", err)
		return
	}
	n.nodeSrv = srv
}

// stopNodeServer closes the worker's node server at once, streams
// included, so that its address is free for the manager's API.
func (n *Node) stopNodeServer() {
	n.mu.Lock()
	srv := n.nodeSrv
	n.nodeSrv = nil
	n.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// tasksRuntime is the worker's runtime, made on first use, and from then
// on the one the node's task logs are read from.
func (n *Node) tasksRuntime() (orchestrator.Runtime, error) {
	rt, err := n.runtime()
	if err == nil && rt != nil {
		n.logs.setRuntime(rt)
	}
	return rt, err
}

// errAPIAddr is a manager's failure to serve on its API address.
func errAPIAddr(addr string, err error) error {
	return fmt.Errorf("daemon: API address %s: %w: pick a free --api-addr", addr, err)
}
