package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ClientConfig is what NewClient needs.
type ClientConfig struct {
	// Managers are the API addresses (host:port) of managers of the
	// cluster, tried in this order until one answers.
	Managers []string
	// TLS presents the client's certificate and verifies the managers'
	// against the cluster's CA. Required: the API is served over TLS only.
	TLS *tls.Config
	// Wait waits d, or until ctx ends (then returning its error), between
	// retries. Required: this package reads no clock, so production passes
	// a wait on the wall clock and tests one that does not sleep.
	Wait func(ctx context.Context, d time.Duration) error
	// Timeout bounds each request to one manager; 0 means 10 s. A stream
	// (Events, Backup) may last longer: only its connecting and its
	// answer's header are bounded by Timeout.
	Timeout time.Duration
}

// Retry pacing: while no leader answers, the client waits from backoffMin
// doubling to backoffMax between rounds over the managers, and gives up
// once its waits add up to giveUpAfter: several elections' worth (one takes
// well under 2 s), and short enough that a cluster without a quorum
// answers a command with an error in seconds, not a hang.
//
// The cap is low because a round is cheap (a refused dial, a no-leader
// answer) and an election takes 0.3-1 s: a client that waited up to 1 s
// between rounds saw a failover of 0.8 s as one of 1.6 s.
const (
	backoffMin     = 50 * time.Millisecond
	backoffMax     = 250 * time.Millisecond
	giveUpAfter    = 5 * time.Second
	defaultTimeout = 10 * time.Second
)

// Client calls the API of a cluster's managers. It finds the leader by
// itself and fails over to another manager when one is unreachable. Safe
// for concurrent use.
type Client struct {
	hc      *http.Client
	wait    func(context.Context, time.Duration) error // nil: never wait, give up after one round
	timeout time.Duration

	mu       sync.Mutex
	managers []string
	// preferred is the manager that answered last or was named leader:
	// tried first, as it most likely leads.
	preferred string
}

// NewClient returns a client of the managers in cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Wait == nil {
		return nil, errors.New("api: ClientConfig.Wait is nil: pass a function that waits on the wall clock (this package reads none)")
	}
	return newClient(cfg)
}

// newClient is NewClient without a required Wait, for Join.
func newClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.Managers) == 0 {
		return nil, errors.New("api: no manager address: pass --manager HOST:PORT, the API address of a manager")
	}
	if cfg.TLS == nil {
		return nil, errors.New("api: no TLS config: the API is served over TLS only; load the cluster's CA certificate and a client certificate")
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	tr := &http.Transport{
		TLSClientConfig:       clientTLS(cfg.TLS),
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
		IdleConnTimeout:       90 * time.Second,
		// No Proxy: managers are reached directly, whatever HTTPS_PROXY says.
	}
	return &Client{
		hc:       &http.Client{Transport: tr},
		wait:     cfg.Wait,
		timeout:  timeout,
		managers: append([]string(nil), cfg.Managers...),
	}, nil
}

// certRefusal marks an error of the caller's own certificate checks, so
// that the client stops rather than fails over: another manager of the
// same cluster would be refused just the same.
type certRefusal struct{ err error }

func (e *certRefusal) Error() string { return e.err.Error() }
func (e *certRefusal) Unwrap() error { return e.err }

// clientTLS is the caller's config with TLS 1.3 at least, and its custom
// verification's errors marked as refusals.
func clientTLS(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	if cfg.MinVersion < tls.VersionTLS13 {
		cfg.MinVersion = tls.VersionTLS13
	}
	if verify := cfg.VerifyConnection; verify != nil {
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := verify(cs); err != nil {
				return &certRefusal{err}
			}
			return nil
		}
	}
	if verify := cfg.VerifyPeerCertificate; verify != nil {
		cfg.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
			if err := verify(raw, chains); err != nil {
				return &certRefusal{err}
			}
			return nil
		}
	}
	return cfg
}

// Close releases the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// SetManagers replaces the managers the client knows, as a worker learns
// them from its heartbeats.
func (c *Client) SetManagers(addrs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.managers = append([]string(nil), addrs...)
}

// Managers returns the managers the client knows.
func (c *Client) Managers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.managers...)
}

func (c *Client) prefer(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.preferred = addr
}

// order is the managers in the order to try them: the preferred one first.
func (c *Client) order() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.managers)+1)
	if c.preferred != "" {
		out = append(out, c.preferred)
	}
	return append(out, c.managers...)
}

// call is one API request, as the client may send it several times.
type call struct {
	method, path string // path with its query
	in           any    // the JSON body; nil for none
	// retrySafe: sending the request twice does no more than sending it
	// once, so after a connection error it may be sent again even if it
	// may have reached a manager.
	retrySafe bool
	// stream: Events or Backup, which last longer than Timeout.
	stream bool
	// only: send to this manager only; no failover, no leader following,
	// no waiting.
	only string
}

func get(path string, q url.Values) *call {
	return &call{method: http.MethodGet, path: path + encodeQuery(q), retrySafe: true}
}

func send(method, path string, in any, retrySafe bool) *call {
	return &call{method: method, path: path, in: in, retrySafe: retrySafe}
}

func encodeQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

func staleQuery(stale bool) url.Values {
	q := url.Values{}
	if stale {
		q.Set("stale", "true")
	}
	return q
}

// fetch sends cl and decodes the answer into a T.
func fetch[T any](ctx context.Context, c *Client, cl *call) (T, error) {
	var out T
	if err := c.exchange(ctx, cl, &out); err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

// exchange sends cl and decodes the answer into out (nil: no answer
// expected).
func (c *Client) exchange(ctx context.Context, cl *call, out any) error {
	resp, err := c.do(ctx, cl)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxBodyBytes)) // to reuse the connection
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("api: %s %s: the answer of %s is not the JSON expected (%v): check that it runs the same version of warren",
			cl.method, cl.path, resp.Request.URL.Host, err)
	}
	return nil
}

// do sends cl until a manager answers it with success or a definite
// error, and returns the successful answer (the caller closes its body).
func (c *Client) do(ctx context.Context, cl *call) (*http.Response, error) {
	var body []byte
	if cl.in != nil {
		var err error
		if body, err = json.Marshal(cl.in); err != nil {
			return nil, fmt.Errorf("api: %s %s: encode the request: %w", cl.method, cl.path, err)
		}
	}
	var waited time.Duration
	backoff := backoffMin
	for {
		resp, retry, err := c.round(ctx, cl, body)
		if resp != nil || err != nil {
			return resp, err
		}
		if c.wait == nil || cl.only != "" || waited >= giveUpAfter {
			if waited > 0 {
				return nil, fmt.Errorf("api: %s %s: gave up after waiting %s: %w", cl.method, cl.path, waited, retry)
			}
			return nil, fmt.Errorf("api: %s %s: %w", cl.method, cl.path, retry)
		}
		if err := c.wait(ctx, backoff); err != nil {
			return nil, fmt.Errorf("api: %s %s: %w (while waiting to retry after: %w)", cl.method, cl.path, err, retry)
		}
		waited += backoff
		backoff = min(2*backoff, backoffMax)
	}
}

// round tries each manager once, the preferred first, and follows
// not-leader answers. It returns the successful answer, or a definite
// error, or else (both nil) in retry why another round may do better: the
// last no-leader or no-quorum answer, or, when no manager answered at all,
// an error wrapping ErrUnavailable.
func (c *Client) round(ctx context.Context, cl *call, body []byte) (resp *http.Response, retry, err error) {
	queue := c.order()
	if cl.only != "" {
		queue = []string{cl.only}
	}
	if len(queue) == 0 {
		return nil, nil, fmt.Errorf("%w: the client knows no manager: pass --manager HOST:PORT", ErrUnavailable)
	}
	var (
		tried       = map[string]bool{}
		unreachable []string
		connErr     error
		answer      error
		// notManager is a worker's answer (a demoted manager still in
		// the list): the other managers may answer.
		notManager error
	)
	for len(queue) > 0 {
		addr := queue[0]
		queue = queue[1:]
		if tried[addr] {
			continue
		}
		tried[addr] = true
		resp, sent, err := c.attempt(ctx, addr, cl, body)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("api: %s %s: %w", cl.method, cl.path, ctx.Err())
			}
			if refused(err) {
				return nil, nil, fmt.Errorf("%w: the TLS connection to %s was refused (%w): check that --manager names a manager of this cluster and that the certificate is one its CA issued",
					ErrUnauthorized, addr, err)
			}
			if sent && !cl.retrySafe {
				// The request may have reached the manager and been
				// applied before the connection broke. Sending it again
				// could apply it twice (a second service, a second node
				// joining), and only the caller can check which.
				return nil, nil, fmt.Errorf("api: %s %s: the connection to %s broke after the request was sent, so it may or may not have been applied; check before sending it again (%w: %w)",
					cl.method, cl.path, addr, ErrUnavailable, err)
			}
			unreachable, connErr = append(unreachable, addr), err
			continue
		}
		if resp.StatusCode/100 == 2 {
			if cl.only == "" {
				c.prefer(addr)
			}
			return resp, nil, nil
		}
		serr := readError(addr, resp)
		switch serr.Code {
		case CodeNotLeader:
			if l := serr.Leader; l != nil && l.APIAddr != "" && cl.only == "" {
				c.prefer(l.APIAddr)
				queue = append([]string{l.APIAddr}, queue...)
			}
			answer = serr
		case CodeNoLeader, CodeNoQuorum:
			// Another manager may know a leader (this one may be cut off
			// from the majority); if none does, wait for an election.
			// Sending any write again after these answers, and after
			// not_leader, rests on the Backend's contract that they mean
			// the write was not applied.
			answer = serr
		case CodeNotManager:
			notManager = serr
		default:
			return nil, nil, serr
		}
	}
	if answer != nil {
		return nil, answer, nil
	}
	if notManager != nil {
		if len(unreachable) == 0 {
			// Every address answered, as a worker: waiting changes nothing.
			return nil, nil, notManager
		}
		connErr = fmt.Errorf("%v; and %w", connErr, notManager)
	}
	return nil, fmt.Errorf("%w: tried %s (last error: %v): check --manager and that the managers run",
		ErrUnavailable, strings.Join(unreachable, ", "), connErr), nil
}

// attempt sends cl to addr once. After a transport error, sent says
// whether the request may have reached the manager: its header was
// written.
func (c *Client) attempt(ctx context.Context, addr string, cl *call, body []byte) (resp *http.Response, sent bool, err error) {
	cancel := context.CancelFunc(func() {})
	if !cl.stream {
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, "https://"+addr+cl.path, rd)
	if err != nil {
		cancel()
		return nil, false, fmt.Errorf("api: %q is not a manager address (%w): use HOST:PORT", addr, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err = c.hc.Do(req)
	if err != nil {
		cancel()
		return nil, wrote.Load(), err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, true, nil
}

// cancelOnClose ends a request's own timeout once its answer is read.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// refused reports whether err is a refusal of a certificate, ours by the
// manager or the manager's by us: not a manager being down.
func refused(err error) bool {
	var (
		mine    *certRefusal
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		invalid x509.CertificateInvalidError
		host    x509.HostnameError
		op      *net.OpError
	)
	return errors.As(err, &mine) || errors.As(err, &verify) || errors.As(err, &unknown) ||
		errors.As(err, &invalid) || errors.As(err, &host) ||
		// crypto/tls reports an alert the peer sent as a "remote error":
		// the manager refused the handshake, in TLS 1.3 typically our
		// certificate, once the request was already on its way.
		(errors.As(err, &op) && op.Op == "remote error")
}

// readError turns an error answer into a *ServerError.
func readError(addr string, resp *http.Response) *ServerError {
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes))
	var e Error
	if err := json.Unmarshal(data, &e); err != nil || e.Code == "" {
		const max = 200
		if len(data) > max {
			data = data[:max]
		}
		return &ServerError{Addr: addr, Status: resp.StatusCode,
			Message: fmt.Sprintf("api: %s answered %s with %q, not a Warren error: check that --manager names a Warren manager of this version", addr, resp.Status, data)}
	}
	return &ServerError{Addr: addr, Status: resp.StatusCode, Code: e.Code, Message: e.Message, Leader: e.Leader}
}
