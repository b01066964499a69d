package api_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Streams", func() {
	var (
		ctx   context.Context
		ca    *testCA
		srv   *testServer
		admin *api.Client
	)

	BeforeEach(func() {
		ctx = context.Background()
		ca, srv, admin = adminOfOneServer()
	})

	When("following the events", func() {
		It("gets one event per applied command, in order, until its context ends", func() {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var (
				mu  sync.Mutex
				got []api.Event
			)
			done := make(chan error, 1)
			go func() {
				done <- admin.Events(ctx, func(e api.Event) error {
					mu.Lock()
					defer mu.Unlock()
					got = append(got, e)
					return nil
				})
			}()
			Eventually(srv.backend.subscribed).Should(Receive())

			for _, name := range []string{"web", "api", "db"} {
				_, err := admin.CreateService(ctx, typestest.Service(name+"-id", name))
				Expect(err).NotTo(HaveOccurred())
			}
			Expect(admin.DeleteService(ctx, "api")).To(Succeed())
			events := func() []api.Event {
				mu.Lock()
				defer mu.Unlock()
				return append([]api.Event(nil), got...)
			}
			Eventually(events).Should(Equal([]api.Event{
				{Index: 1, Command: "CreateService", Object: "service", ID: "web-id"},
				{Index: 2, Command: "CreateService", Object: "service", ID: "api-id"},
				{Index: 3, Command: "CreateService", Object: "service", ID: "db-id"},
				{Index: 4, Command: "DeleteService", Object: "service", ID: "api-id"},
			}))

			cancel()
			Eventually(done).Should(Receive(MatchError(context.Canceled)))
		})

		It("ends with fn's error", func() {
			stop := errors.New("seen enough")
			done := make(chan error, 1)
			go func() { done <- admin.Events(ctx, func(api.Event) error { return stop }) }()
			Eventually(srv.backend.subscribed).Should(Receive())
			_, err := admin.CreateService(ctx, typestest.Service("", "web"))
			Expect(err).NotTo(HaveOccurred())
			Eventually(done).Should(Receive(Equal(stop)))
		})
	})

	When("taking a backup", func() {
		data := bytes.Repeat([]byte("warren.db page "), 10000)

		BeforeEach(func() {
			srv.backend.set(func(b *fakeBackend) { b.backup, b.backupIndex = data, 42 })
		})

		It("streams the state and reads the applied index from the trailer", func() {
			var buf bytes.Buffer
			index, err := admin.Backup(ctx, &buf)
			Expect(err).NotTo(HaveOccurred())
			Expect(index).To(Equal(uint64(42)))
			Expect(buf.Bytes()).To(Equal(data))
		})

		It("reports a backup that fails half-way, from the error trailer", func() {
			srv.backend.set(func(b *fakeBackend) { b.backupFailAt = len(data) / 2 })
			var buf bytes.Buffer
			_, err := admin.Backup(ctx, &buf)
			Expect(err).To(MatchError(errDiskOnFire.Error()))
			var serr *api.ServerError
			Expect(errors.As(err, &serr)).To(BeTrue())
			Expect(serr.Code).To(Equal(api.CodeInternal))
			Expect(buf.Len()).To(Equal(len(data) / 2))
		})

		It("answers an ordinary error when the backup fails before it starts", func() {
			srv.backend.set(func(b *fakeBackend) { b.backupFailAt = 0 })
			_, err := admin.Backup(ctx, &bytes.Buffer{})
			var serr *api.ServerError
			Expect(errors.As(err, &serr)).To(BeTrue())
			Expect(serr.Status).To(Equal(500))
			Expect(serr.Message).To(Equal(errDiskOnFire.Error()))
		})
	})

	When("read with plain HTTP/1.1", func() {
		var get func(ctx context.Context, path string) *http.Response

		BeforeEach(func() {
			cert := ca.issue("ops", api.RoleAdmin)
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.clientTLS(&cert)}}
			DeferCleanup(hc.CloseIdleConnections)
			get = func(ctx context.Context, path string) *http.Response {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+srv.addr()+path, nil)
				Expect(err).NotTo(HaveOccurred())
				resp, err := hc.Do(req)
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(resp.Body.Close)
				Expect(resp.StatusCode).To(Equal(http.StatusOK))
				return resp
			}
		})

		It("sends events as flushed lines of JSON", func() {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			resp := get(ctx, "/v1/events")
			Expect(resp.Header.Get("Content-Type")).To(Equal("application/x-ndjson"))
			Eventually(srv.backend.subscribed).Should(Receive())
			_, err := admin.CreateService(ctx, typestest.Service("web-id", "web"))
			Expect(err).NotTo(HaveOccurred())
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			Expect(err).NotTo(HaveOccurred())
			Expect(line).To(MatchJSON(`{"index": 1, "command": "CreateService", "object": "service", "id": "web-id"}`))
		})

		It("sends the backup as a file, with its index in a declared trailer", func() {
			srv.backend.set(func(b *fakeBackend) { b.backup, b.backupIndex = []byte("bolt"), 7 })
			resp := get(ctx, "/v1/cluster/backup")
			Expect(resp.Header.Get("Content-Type")).To(Equal("application/octet-stream"))
			Expect(resp.Trailer).To(HaveKey(api.TrailerAppliedIndex))
			body, err := io.ReadAll(resp.Body)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(body)).To(Equal("bolt"))
			Expect(resp.Trailer.Get(api.TrailerAppliedIndex)).To(Equal("7"))
			Expect(resp.Trailer.Get(api.TrailerError)).To(BeEmpty())
		})
	})
})
