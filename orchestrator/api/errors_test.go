package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

var _ = Describe("Error mapping", func() {
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

	DescribeTable("brings a backend's error back as an error wrapping the same sentinel, with its message",
		func(sentinel error, code string, status int) {
			srv.backend.set(func(b *fakeBackend) { b.failWith = fmt.Errorf("fake: refused for the test: %w", sentinel) })
			_, err := admin.GetNode(ctx, "n1")
			Expect(err).To(MatchError(sentinel))
			Expect(err).To(MatchError(ContainSubstring("fake: refused for the test")))
			var serr *api.ServerError
			Expect(errors.As(err, &serr)).To(BeTrue())
			Expect(serr.Code).To(Equal(code))
			Expect(serr.Status).To(Equal(status))
			Expect(serr.Addr).To(Equal(srv.addr()))
		},
		Entry("no leader", api.ErrNoLeader, api.CodeNoLeader, http.StatusServiceUnavailable),
		Entry("no quorum", api.ErrNoQuorum, api.CodeNoQuorum, http.StatusServiceUnavailable),
		Entry("outcome unknown", api.ErrOutcomeUnknown, api.CodeUnknown, http.StatusServiceUnavailable),
		Entry("unauthorized", api.ErrUnauthorized, api.CodeUnauthorized, http.StatusUnauthorized),
		Entry("forbidden", api.ErrForbidden, api.CodeForbidden, http.StatusForbidden),
		Entry("removed", api.ErrRemoved, api.CodeRemoved, http.StatusGone),
		Entry("bad request", api.ErrBadRequest, api.CodeBadRequest, http.StatusBadRequest),
		Entry("invalid", types.ErrInvalid, api.CodeInvalid, http.StatusBadRequest),
		Entry("not found", state.ErrNotFound, api.CodeNotFound, http.StatusNotFound),
		Entry("exists", fsm.ErrExists, api.CodeExists, http.StatusConflict),
		Entry("name taken", state.ErrNameTaken, api.CodeNameTaken, http.StatusConflict),
		Entry("in use", fsm.ErrInUse, api.CodeInUse, http.StatusConflict),
		Entry("conflict", fsm.ErrConflict, api.CodeConflict, http.StatusConflict),
	)

	When("the manager is not the leader and the leader cannot be reached", func() {
		It("returns a *NotLeaderError naming the leader", func() {
			leader := api.Manager{ID: "m9", APIAddr: closedAddr()}
			srv.backend.set(func(b *fakeBackend) { b.leader = &leader })
			_, err := admin.ListNodes(ctx, false)
			Expect(err).To(MatchError(api.ErrNotLeader))
			var nl *api.NotLeaderError
			Expect(errors.As(err, &nl)).To(BeTrue())
			Expect(nl.Leader).To(Equal(leader))
		})
	})

	When("the backend fails with an error the API does not know", func() {
		It("is an internal error carrying its message", func() {
			srv.backend.set(func(b *fakeBackend) { b.failWith = errDiskOnFire })
			_, err := admin.ListServices(ctx, false)
			var serr *api.ServerError
			Expect(errors.As(err, &serr)).To(BeTrue())
			Expect(serr.Code).To(Equal(api.CodeInternal))
			Expect(serr.Status).To(Equal(http.StatusInternalServerError))
			Expect(err.Error()).To(Equal(errDiskOnFire.Error()))
			Expect(errors.Unwrap(err)).To(BeNil())
		})
	})

	When("a request is malformed", func() {
		var do func(method, path, body string) (int, *api.Error)

		BeforeEach(func() {
			cert := ca.issue("ops", api.RoleAdmin)
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.clientTLS(&cert)}}
			DeferCleanup(hc.CloseIdleConnections)
			do = func(method, path, body string) (int, *api.Error) {
				req, err := http.NewRequestWithContext(ctx, method, "https://"+srv.addr()+path, strings.NewReader(body))
				Expect(err).NotTo(HaveOccurred())
				resp, err := hc.Do(req)
				Expect(err).NotTo(HaveOccurred())
				defer resp.Body.Close()
				Expect(resp.Header.Get("Content-Type")).To(Equal("application/json"))
				data, err := io.ReadAll(resp.Body)
				Expect(err).NotTo(HaveOccurred())
				var e api.Error
				Expect(json.Unmarshal(data, &e)).To(Succeed(), string(data))
				return resp.StatusCode, &e
			}
		})

		DescribeTable("answers 400 bad_request, naming the problem",
			func(method, path, body, says string) {
				status, e := do(method, path, body)
				Expect(status).To(Equal(http.StatusBadRequest))
				Expect(e.Code).To(Equal(api.CodeBadRequest))
				Expect(e.Message).To(ContainSubstring(says))
			},
			Entry("truncated JSON", "POST", "/v1/services", `{"Name": "web"`, "not a valid JSON types.Service"),
			Entry("wrong type", "POST", "/v1/services", `{"Replicas": "three"}`, "cannot unmarshal string"),
			Entry("unknown field", "POST", "/v1/volumes", `{"Nmae": "data"}`, `unknown field "Nmae"`),
			Entry("two values", "POST", "/v1/networks", `{"Name": "a"} {"Name": "b"}`, "send exactly one value"),
			Entry("empty body", "PATCH", "/v1/nodes/n1", ``, "the request body is empty: send a JSON api.NodeUpdate"),
			Entry("huge body", "POST", "/v1/services", `{"Name": "`+strings.Repeat("x", api.MaxBodyBytes)+`"}`, "larger than 1048576 bytes"),
			Entry("stale that is not a boolean", "GET", "/v1/nodes?stale=maybe", ``, "?stale=maybe is not a boolean"),
			Entry("join token of another role", "GET", "/v1/cluster/join-token/admin", ``, "use worker or manager"),
			Entry("unknown endpoint", "GET", "/v1/servicez", ``, "no endpoint GET /v1/servicez"),
			Entry("unknown method", "PATCH", "/v1/services", ``, "no endpoint PATCH /v1/services"),
		)
	})
})
