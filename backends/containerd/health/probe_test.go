package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// seenRequest is what an http check's request looked like to the server.
type seenRequest struct {
	Path, Query, UserAgent string
	Close                  bool // Connection: close
}

var _ = Describe("Probes", func() {
	var (
		clk    *stepClock
		target *fakeTarget
		hc     *types.HealthCheck
	)

	BeforeEach(func() {
		clk = newStepClock(t0)
		target = &fakeTarget{addr: netip.MustParseAddr("127.0.0.1")}
		hc = &types.HealthCheck{Interval: time.Second, Timeout: handoffTimeout, Retries: 1}
	})

	// probeOnce starts a monitor, lets it probe once and returns it, parked.
	probeOnce := func() *Monitor {
		GinkgoHelper()
		m := Start(hc, target, WithClock(clk))
		DeferCleanup(m.Stop)
		clk.nextWait()
		clk.probe(1)
		return m
	}

	// expectFailed asserts that m's last probe failed with an error matching
	// err, and that the status turned unhealthy (Retries is 1).
	expectFailed := func(m *Monitor, err any) {
		GinkgoHelper()
		last := m.Last()
		Expect(last.OK).To(BeFalse())
		Expect(last.Err).To(MatchError(err))
		Expect(last.Output).To(Equal(last.Err.Error()))
		Expect(m.Status()).To(Equal(unhealthy))
	}

	When("the check is http", func() {
		var (
			mu   sync.Mutex
			seen []seenRequest
			mux  *http.ServeMux
			// release ends the slow handler's wait, so that closing the
			// server need not wait for the client to give up.
			release chan struct{}
			conns   int // new connections
		)

		BeforeEach(func() {
			hc.Type = types.HealthCheckHTTP
			seen, conns = nil, 0
			release = make(chan struct{})
			mux = http.NewServeMux()
			status := func(code int) http.HandlerFunc {
				return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
			}
			mux.Handle("/", status(http.StatusOK))
			mux.Handle("/no-content", status(http.StatusNoContent))
			mux.Handle("/not-found", status(http.StatusNotFound))
			mux.Handle("/broken", status(http.StatusInternalServerError))
			mux.Handle("/moved", http.RedirectHandler("/broken", http.StatusFound))
			mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			})
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = append(seen, seenRequest{Path: r.URL.Path, Query: r.URL.RawQuery, UserAgent: r.UserAgent(), Close: r.Close})
				mu.Unlock()
				mux.ServeHTTP(w, r)
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					mu.Lock()
					conns++
					mu.Unlock()
				}
			}
			srv.Start()
			DeferCleanup(srv.Close)
			DeferCleanup(func() { close(release) }) // before srv.Close: cleanups run last first
			ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
			target.addr = ap.Addr()
			hc.Port = int(ap.Port())
		})

		requests := func() []seenRequest {
			mu.Lock()
			defer mu.Unlock()
			return append([]seenRequest(nil), seen...)
		}

		DescribeTable("a 2xx or 3xx answer is healthy; a redirect is not followed",
			func(path, status string) {
				hc.Path = path
				m := probeOnce()
				Expect(m.Status()).To(Equal(healthy))
				Expect(m.Last().OK).To(BeTrue())
				Expect(m.Last().Err).NotTo(HaveOccurred())
				Expect(m.Last().Output).To(Equal("GET " + m.httpURL() + ": " + status))
				Expect(requests()).To(HaveLen(1))
			},
			Entry("200", "/", "200 OK"),
			Entry("204", "/no-content", "204 No Content"),
			Entry("302 to a 500", "/moved", "302 Found"),
		)

		DescribeTable("another answer is a failure",
			func(path, status string) {
				hc.Path = path
				m := probeOnce()
				expectFailed(m, ErrBadStatus)
				Expect(m.Last().Output).To(ContainSubstring(status))
			},
			Entry("404", "/not-found", "404 Not Found"),
			Entry("500", "/broken", "500 Internal Server Error"),
		)

		It("fails a server that does not answer within Timeout", func() {
			hc.Path = "/slow"
			hc.Timeout = 100 * time.Millisecond
			m := probeOnce()
			expectFailed(m, ErrTimeout)
			Expect(m.Last().Output).To(Equal("health: probe timed out after 100ms: GET " + m.httpURL()))
		})

		DescribeTable("requests Path, on a new connection closed after each probe",
			func(path, wantPath, wantQuery string) {
				hc.Path = path
				m := probeOnce()
				clk.probe(1)
				Expect(m.Status()).To(Equal(healthy))
				want := seenRequest{Path: wantPath, Query: wantQuery, UserAgent: userAgent, Close: true}
				Expect(requests()).To(Equal([]seenRequest{want, want}))
				mu.Lock()
				defer mu.Unlock()
				Expect(conns).To(Equal(2))
			},
			Entry("no Path: /", "", "/", ""),
			Entry("a Path without its slash", "no-content", "/no-content", ""),
			Entry("a Path with a query", "/no-content?full=1", "/no-content", "full=1"),
		)
	})

	When("the check is tcp", func() {
		BeforeEach(func() { hc.Type = types.HealthCheckTCP })

		It("is healthy when the port accepts a connection", func() {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(ln.Close)
			accepted := make(chan struct{}, 1)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					_ = c.Close()
					select {
					case accepted <- struct{}{}:
					default:
					}
				}
			}()
			hc.Port = ln.Addr().(*net.TCPAddr).Port
			m := probeOnce()
			Expect(m.Status()).To(Equal(healthy))
			Expect(m.Last()).To(HaveField("Output", "connected to "+ln.Addr().String()))
			Eventually(accepted).WithTimeout(handoffTimeout).Should(Receive())
		})

		It("fails on a closed port, with the network's reason", func() {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			Expect(err).NotTo(HaveOccurred())
			hc.Port = ln.Addr().(*net.TCPAddr).Port
			Expect(ln.Close()).To(Succeed())
			m := probeOnce()
			expectFailed(m, syscall.ECONNREFUSED)
			Expect(m.Last().Output).To(HavePrefix("health: connect to " + ln.Addr().String() + ": "))
		})
	})

	When("the check is exec", func() {
		errBoom := errors.New("task not running")

		BeforeEach(func() {
			hc.Type = types.HealthCheckExec
			hc.Command = []string{"pg_isready", "-U", "app"}
		})

		It("runs Command in the container, with Timeout as the context's deadline, 30s by default", func() {
			hc.Timeout = 0
			before := time.Now()
			m := probeOnce()
			Expect(m.Status()).To(Equal(healthy))
			Expect(m.Last()).To(HaveField("Output", "exit code 0"))
			calls := target.execs()
			Expect(calls).To(HaveLen(1))
			Expect(calls[0].Argv).To(Equal(hc.Command))
			Expect(calls[0].Deadline).To(BeTemporally(">=", before.Add(DefaultTimeout)))
			Expect(calls[0].Deadline).To(BeTemporally("<=", time.Now().Add(DefaultTimeout)))
		})

		DescribeTable("fails",
			func(timeout time.Duration, exec func(context.Context, []string) (int, error), err error, output string) {
				if timeout != 0 {
					hc.Timeout = timeout
				}
				target.exec = exec
				m := probeOnce()
				expectFailed(m, err)
				Expect(m.Last().Output).To(Equal(output))
			},
			Entry("on a nonzero exit code", time.Duration(0), exitCodes(1), ErrExitCode,
				`health: nonzero exit code 1 from ["pg_isready" "-U" "app"]`),
			Entry("when Exec fails", time.Duration(0),
				func(context.Context, []string) (int, error) { return 0, errBoom }, errBoom,
				`health: exec ["pg_isready" "-U" "app"]: task not running`),
			Entry("when the command outlives Timeout, which cancels it", 50*time.Millisecond, blockUntilDone, ErrTimeout,
				`health: probe timed out after 50ms: exec ["pg_isready" "-U" "app"]`),
			Entry("when the command exits 0, but after Timeout",
				50*time.Millisecond, func(ctx context.Context, _ []string) (int, error) {
					<-ctx.Done()
					return 0, nil
				}, ErrTimeout, `health: probe timed out after 50ms: exec ["pg_isready" "-U" "app"]`),
		)

		It("saw its context cancelled at the deadline when it outlived Timeout", func() {
			hc.Timeout = 50 * time.Millisecond
			target.exec = blockUntilDone
			probeOnce()
			Expect(target.execs()).To(ConsistOf(HaveField("CtxErr", context.DeadlineExceeded)))
		})

		It("keeps Output short, cut on a character boundary, and Err whole", func() {
			long := strings.Repeat("é", 500)
			target.exec = func(context.Context, []string) (int, error) { return 0, errors.New(long) }
			m := probeOnce()
			last := m.Last()
			Expect(len(last.Output)).To(BeNumerically("<=", maxOutputBytes))
			Expect(utf8.ValidString(last.Output)).To(BeTrue())
			Expect(last.Output).To(HaveSuffix("é…"))
			Expect(last.Err.Error()).To(HaveSuffix(long))
		})
	})

	When("the check cannot run", func() {
		DescribeTable("every probe fails with what to fix",
			func(check *types.HealthCheck, addr netip.Addr, err error, output string) {
				if check != nil {
					check.Interval, check.Retries = time.Second, 1
				}
				hc = check
				target.addr = addr
				m := probeOnce()
				Expect(m.Last()).To(MatchFields(IgnoreExtras, Fields{
					"OK": BeFalse(), "Err": MatchError(err), "Output": Equal(output),
				}))
				clk.probe(DefaultRetries - 1) // enough for a nil check too, with the default Retries
				Expect(m.Last().Err).To(MatchError(err))
				Expect(m.Status()).To(Equal(unhealthy))
			},
			Entry("no check", nil, netip.Addr{}, ErrInvalidCheck,
				`health: invalid health check: unknown type ""; use http, tcp or exec`),
			Entry("an unknown type", &types.HealthCheck{Type: "grpc", Port: 80}, netip.Addr{}, ErrInvalidCheck,
				`health: invalid health check: unknown type "grpc"; use http, tcp or exec`),
			Entry("http without a Port", &types.HealthCheck{Type: types.HealthCheckHTTP}, netip.MustParseAddr("10.0.0.5"), ErrInvalidCheck,
				"health: invalid health check: http check needs a Port in 1-65535, not 0"),
			Entry("tcp with too large a Port", &types.HealthCheck{Type: types.HealthCheckTCP, Port: 70000}, netip.MustParseAddr("10.0.0.5"), ErrInvalidCheck,
				"health: invalid health check: tcp check needs a Port in 1-65535, not 70000"),
			Entry("exec without a Command", &types.HealthCheck{Type: types.HealthCheckExec}, netip.Addr{}, ErrInvalidCheck,
				"health: invalid health check: exec check has no Command"),
			Entry("http on a container without an address", &types.HealthCheck{Type: types.HealthCheckHTTP, Port: 8080}, netip.Addr{}, ErrNoAddress,
				"health: the container has no IP address for the http check on port 8080"),
			Entry("tcp on a container without an address", &types.HealthCheck{Type: types.HealthCheckTCP, Port: 5432}, netip.Addr{}, ErrNoAddress,
				"health: the container has no IP address for the tcp check on port 5432"),
		)
	})
})
