package api_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

// relayed records what the handler asked fakeBackend.RelayLogs for; the
// fake answers each task with two lines ("TASK: one", "TASK: two"), or,
// for a task on a node named "unreachable", one entry with an error. With
// Follow it then waits for the client to go.
var relayed struct {
	sync.Mutex
	tasks []string // "TASK@NODE"
	opts  []api.LogOptions
}

func (b *fakeBackend) RelayLogs(ctx context.Context, tasks []api.LogTask, opts api.LogOptions, fn func(api.LogEntry) error) error {
	relayed.Lock()
	relayed.opts = append(relayed.opts, opts)
	for _, t := range tasks {
		relayed.tasks = append(relayed.tasks, t.Task.ID+"@"+t.Node.ID)
	}
	relayed.Unlock()
	for _, t := range tasks {
		e := api.LogEntry{Task: t.Task.ID, NodeID: t.Node.ID, Node: t.Node.Hostname}
		if t.Node.Hostname == "unreachable" {
			e.Error = "node unreachable cannot be reached"
			if err := fn(e); err != nil {
				return err
			}
			continue
		}
		for _, l := range []string{"one", "two"} {
			e.Line = t.Task.ID + ": " + l
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	if opts.Follow {
		<-ctx.Done()
	}
	return nil
}

// fakeNode is a node's logs in memory: by task, the whole output; a
// followed log sends it, then waits for the client to go.
type fakeNode struct{ logs map[string]string }

func (n *fakeNode) OpenTaskLog(ctx context.Context, taskID string, opts api.LogOptions) (io.ReadCloser, error) {
	if taskID == "simulated" {
		return nil, fmt.Errorf("fake: %w: the simulated runtime keeps no logs", errors.ErrUnsupported)
	}
	out, ok := n.logs[taskID]
	if !ok {
		return nil, fmt.Errorf("fake: %w: no log of task %s here", state.ErrNotFound, taskID)
	}
	var r io.Reader = strings.NewReader(out)
	if opts.Follow {
		r = io.MultiReader(r, ctxReader{ctx})
	}
	return io.NopCloser(r), nil
}

// ctxReader ends once its context does.
type ctxReader struct{ ctx context.Context }

func (r ctxReader) Read([]byte) (int, error) {
	<-r.ctx.Done()
	return 0, io.EOF
}

// serveNodeAPI serves h over TLS, requiring a client certificate when
// require (as a worker does), else as a manager does.
func serveNodeAPI(ca *testCA, h http.Handler, require bool) string {
	s := httptest.NewUnstartedServer(h)
	s.TLS = serverTLS(ca)
	if require {
		s.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	s.EnableHTTP2 = true
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	DeferCleanup(s.Close)
	return s.Listener.Addr().String()
}

var _ = Describe("Logs", func() {
	var (
		ctx   context.Context
		ca    *testCA
		srv   *testServer
		admin *api.Client
		// as returns a client of addrs presenting a certificate of role.
		as func(role string, addrs ...string) *api.Client
	)

	BeforeEach(func() {
		ctx = context.Background()
		ca, srv, admin = adminOfOneServer()
		as = func(role string, addrs ...string) *api.Client {
			cert := ca.issue(role+"-1", role)
			return newClient(ca.clientTLS(&cert), &waits{}, addrs...)
		}
		relayed.Lock()
		relayed.tasks, relayed.opts = nil, nil
		relayed.Unlock()
	})

	When("an admin asks for a service's logs", func() {
		BeforeEach(func() {
			st := srv.backend.store
			Expect(st.UpdateService(typestest.Service("web-id", "web"))).To(Succeed())
			for _, id := range []string{"n1", "n2", "n3"} {
				n := typestest.Node(id)
				n.Hostname = "host-" + id
				if id == "n3" {
					n.Hostname = "unreachable"
				}
				Expect(st.UpdateNode(n)).To(Succeed())
			}
			Expect(st.UpdateNode(typestest.Node("gone"))).To(Succeed())
			for _, c := range [][2]string{{"web.2", "n2"}, {"web.1", "n1"}, {"web.3", "n3"}, {"web.4", ""}, {"web.5", "gone"}} {
				Expect(st.UpdateContainer(typestest.Container(c[0], "web-id", c[1]))).To(Succeed())
			}
			Expect(st.DeleteNode("gone")).To(Succeed())
		})

		collect := func(key string, opts api.LogOptions) ([]api.LogEntry, error) {
			var got []api.LogEntry
			err := admin.ServiceLogs(ctx, key, opts, func(e api.LogEntry) error {
				got = append(got, e)
				return nil
			})
			return got, err
		}

		It("relays the placed tasks whose node is known, in task order, and streams every entry", func() {
			got, err := collect("web", api.LogOptions{Tail: 1})
			Expect(err).NotTo(HaveOccurred())
			Expect(relayed.tasks).To(Equal([]string{"web.1@n1", "web.2@n2", "web.3@n3"}))
			Expect(relayed.opts).To(Equal([]api.LogOptions{{Tail: 1}}))
			Expect(got).To(Equal([]api.LogEntry{
				{Task: "web.1", NodeID: "n1", Node: "host-n1", Line: "web.1: one"},
				{Task: "web.1", NodeID: "n1", Node: "host-n1", Line: "web.1: two"},
				{Task: "web.2", NodeID: "n2", Node: "host-n2", Line: "web.2: one"},
				{Task: "web.2", NodeID: "n2", Node: "host-n2", Line: "web.2: two"},
				{Task: "web.3", NodeID: "n3", Node: "unreachable", Error: "node unreachable cannot be reached"},
			}))
		})

		It("finds the service by ID too, and reads the whole log by default", func() {
			_, err := collect("web-id", api.LogOptions{Tail: api.AllLines})
			Expect(err).NotTo(HaveOccurred())
			Expect(relayed.opts).To(Equal([]api.LogOptions{{Tail: api.AllLines}}))
		})

		It("follows until the client's context ends", func() {
			fctx, cancel := context.WithCancel(ctx)
			defer cancel()
			lines := make(chan api.LogEntry, 10)
			done := make(chan error, 1)
			go func() {
				done <- admin.ServiceLogs(fctx, "web", api.LogOptions{Follow: true, Tail: 0}, func(e api.LogEntry) error {
					lines <- e
					return nil
				})
			}()
			Eventually(lines).Should(Receive(HaveField("Line", "web.2: two")))
			Consistently(done).ShouldNot(Receive())
			cancel()
			Eventually(done).Should(Receive(MatchError(context.Canceled)))
			Expect(relayed.opts).To(Equal([]api.LogOptions{{Follow: true, Tail: 0}}))
		})

		It("says which service is unknown, before streaming anything", func() {
			_, err := collect("nope", api.LogOptions{Tail: api.AllLines})
			Expect(err).To(MatchError(state.ErrNotFound))
			Expect(err.Error()).To(ContainSubstring(`no service with ID or name "nope"`))
			Expect(relayed.opts).To(BeEmpty())
		})

		It("refuses a certificate other than an admin's", func() {
			err := as(api.RoleManager, srv.addr()).ServiceLogs(ctx, "web", api.LogOptions{}, func(api.LogEntry) error { return nil })
			Expect(err).To(MatchError(api.ErrForbidden))
		})
	})

	DescribeTable("a node serves its task logs to managers only",
		func(require bool) {
			node := &fakeNode{logs: map[string]string{"web.1": "one\ntwo\n"}}
			var addr string
			if require {
				addr = serveNodeAPI(ca, api.NewNodeHandler(api.NodeHandlerConfig{Node: node, RoleOf: roleOf}), true)
			} else {
				addr = serveNodeAPI(ca, api.NewHandler(api.HandlerConfig{Backend: newFakeBackend("m2"), Clock: &testClock{t: typestest.Epoch}, RoleOf: roleOf, Node: node}), false)
			}
			read := func(c *api.Client, task string, opts api.LogOptions) (string, error) {
				rc, err := c.TaskLog(ctx, addr, task, opts)
				if err != nil {
					return "", err
				}
				defer rc.Close()
				data, err := io.ReadAll(rc)
				return string(data), err
			}
			mgr := as(api.RoleManager, srv.addr())
			Expect(read(mgr, "web.1", api.LogOptions{Tail: api.AllLines})).To(Equal("one\ntwo\n"))

			for _, role := range []string{api.RoleAdmin, api.RoleWorker} {
				_, err := read(as(role, srv.addr()), "web.1", api.LogOptions{})
				Expect(err).To(MatchError(api.ErrForbidden), role)
				Expect(err.Error()).To(ContainSubstring("role manager"))
			}

			_, err := read(mgr, "web.9", api.LogOptions{})
			Expect(err).To(MatchError(state.ErrNotFound))
			Expect(err.Error()).To(ContainSubstring("web.9"))
			_, err = read(mgr, "simulated", api.LogOptions{})
			Expect(err).To(MatchError(errors.ErrUnsupported))
			Expect(err.Error()).To(ContainSubstring("keeps no logs"))

			fctx, cancel := context.WithCancel(ctx)
			rc, err := mgr.TaskLog(fctx, addr, "web.1", api.LogOptions{Follow: true})
			Expect(err).NotTo(HaveOccurred())
			buf := make([]byte, 8)
			n, err := io.ReadFull(rc, buf)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(buf[:n])).To(Equal("one\ntwo\n"))
			cancel()
			_, err = rc.Read(buf)
			Expect(err).To(HaveOccurred())
			Expect(rc.Close()).To(Succeed())
		},
		Entry("a manager, on its API", false),
		Entry("a worker, on its node server", true),
	)

	When("a worker answers an API request", func() {
		var worker string
		BeforeEach(func() {
			worker = serveNodeAPI(ca, api.NewNodeHandler(api.NodeHandlerConfig{Node: &fakeNode{}, RoleOf: roleOf}), true)
		})

		It("says it is a worker, at once", func() {
			w := &waits{}
			cert := ca.issue("ops", api.RoleAdmin)
			_, err := newClient(ca.clientTLS(&cert), w, worker).ListServices(ctx, false)
			Expect(err).To(MatchError(api.ErrNotManager))
			Expect(err.Error()).To(ContainSubstring("send API requests to a manager"))
			Expect(w.all()).To(BeEmpty())
		})

		It("is passed over for the next manager", func() {
			_, err := as(api.RoleAdmin, worker, srv.addr()).ListServices(ctx, false)
			Expect(err).NotTo(HaveOccurred())
		})
	})
})
