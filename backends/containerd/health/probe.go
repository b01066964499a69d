package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Why a probe failed, wrapped in Result.Err; network and Target errors are
// wrapped as they come.
var (
	// ErrInvalidCheck: the check cannot run as configured; fix the service's
	// health check.
	ErrInvalidCheck = errors.New("health: invalid health check")
	// ErrNoAddress: an http or tcp check on a container without an IP address.
	ErrNoAddress = errors.New("health: the container has no IP address")
	// ErrTimeout: the probe did not finish within the check's Timeout.
	ErrTimeout = errors.New("health: probe timed out")
	// ErrBadStatus: an http check answered with neither 2xx nor 3xx.
	ErrBadStatus = errors.New("health: unhealthy HTTP status")
	// ErrExitCode: an exec check's command exited nonzero.
	ErrExitCode = errors.New("health: nonzero exit code")
)

// userAgent lets a service tell probes from its users in its logs, as
// Kubernetes' kube-probe does.
const userAgent = "warren-health/1"

// newHTTPClient returns a client for one Monitor's http probes: no proxy
// from the environment (the container's address is local to the node), no
// redirects followed (a 3xx is an answer, and healthy), no keep-alive (a
// probe every Interval must not pin a connection in the container).
func newHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// probe runs the check once, within Timeout.
func (m *Monitor) probe(ctx context.Context) Result {
	r := Result{Time: m.clock.Now()}
	ctx, cancel := context.WithTimeout(ctx, m.hc.Timeout)
	defer cancel()
	var err error
	switch m.hc.Type {
	case types.HealthCheckHTTP:
		r.Output, err = m.probeHTTP(ctx)
	case types.HealthCheckTCP:
		r.Output, err = m.probeTCP(ctx)
	case types.HealthCheckExec:
		r.Output, err = m.probeExec(ctx)
	default:
		err = fmt.Errorf("%w: unknown type %q; use http, tcp or exec", ErrInvalidCheck, m.hc.Type)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Late is a failure even if the answer was good. And the network
		// and Targets report a deadline in their own words (i/o timeout,
		// context deadline exceeded, exit code 137): say it one way.
		err = fmt.Errorf("%w after %s: %s", ErrTimeout, m.hc.Timeout, m.what())
	}
	r.OK = err == nil
	r.Err = err
	if err != nil {
		r.Output = err.Error()
	}
	r.Output = truncate(r.Output, maxOutputBytes)
	return r
}

// what names the probe for a message: "GET http://10.0.0.5:8080/healthz".
func (m *Monitor) what() string {
	switch m.hc.Type {
	case types.HealthCheckHTTP:
		return "GET " + m.httpURL()
	case types.HealthCheckTCP:
		return "connect to " + m.addrPort()
	default:
		return fmt.Sprintf("exec %q", m.hc.Command)
	}
}

func (m *Monitor) addrPort() string {
	return netip.AddrPortFrom(m.target.Addr(), uint16(m.hc.Port)).String()
}

func (m *Monitor) httpURL() string {
	path := m.hc.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path // "" and "healthz" alike
	}
	return "http://" + m.addrPort() + path
}

// checkAddr returns why an http or tcp probe cannot connect, if it cannot.
func (m *Monitor) checkAddr() error {
	if m.hc.Port < 1 || m.hc.Port > 65535 {
		return fmt.Errorf("%w: %s check needs a Port in 1-65535, not %d", ErrInvalidCheck, m.hc.Type, m.hc.Port)
	}
	if !m.target.Addr().IsValid() {
		return fmt.Errorf("%w for the %s check on port %d", ErrNoAddress, m.hc.Type, m.hc.Port)
	}
	return nil
}

func (m *Monitor) probeHTTP(ctx context.Context) (string, error) {
	if err := m.checkAddr(); err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.httpURL(), nil)
	if err != nil {
		return "", fmt.Errorf("%w: Path %q: %w", ErrInvalidCheck, m.hc.Path, err)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := m.client.Do(req)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // drop url.Error's `Get "URL":`, we name the URL ourselves
		}
		return "", fmt.Errorf("health: GET %s: %w", m.httpURL(), err)
	}
	// Unread, the body is discarded with the connection: keep-alives are off.
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return "", fmt.Errorf("%w %s from GET %s", ErrBadStatus, resp.Status, m.httpURL())
	}
	return fmt.Sprintf("GET %s: %s", m.httpURL(), resp.Status), nil
}

func (m *Monitor) probeTCP(ctx context.Context) (string, error) {
	if err := m.checkAddr(); err != nil {
		return "", err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addrPort())
	if err != nil {
		return "", fmt.Errorf("health: connect to %s: %w", m.addrPort(), err)
	}
	_ = conn.Close()
	return "connected to " + m.addrPort(), nil
}

func (m *Monitor) probeExec(ctx context.Context) (string, error) {
	if len(m.hc.Command) == 0 {
		return "", fmt.Errorf("%w: exec check has no Command", ErrInvalidCheck)
	}
	code, err := m.target.Exec(ctx, m.hc.Command)
	switch {
	case err != nil:
		return "", fmt.Errorf("health: exec %q: %w", m.hc.Command, err)
	case code != 0:
		return "", fmt.Errorf("%w %d from %q", ErrExitCode, code, m.hc.Command)
	}
	return "exit code 0", nil
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	i := n - len(mark)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}
