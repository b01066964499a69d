package raft_test

import (
	"bytes"
	"errors"
	"io"

	hraft "github.com/hashicorp/raft"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/bolt"
	wraft "github.com/warren-orchestrator/warren/backends/raft"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

// entry encodes cmd as the raft log entry at index.
func entry(index uint64, cmd fsm.Command) *hraft.Log {
	data, err := fsm.Encode(cmd)
	Expect(err).NotTo(HaveOccurred())
	return &hraft.Log{Index: index, Term: 1, Type: hraft.LogCommand, Data: data}
}

func openFSM(dir string) (*wraft.FSM, *bolt.KV) {
	kv, err := bolt.OpenKV(dir, &bolt.Options{NoSync: true})
	Expect(err).NotTo(HaveOccurred())
	f, err := wraft.NewFSM(kv, func(err error) { Fail("fatal: " + err.Error()) })
	Expect(err).NotTo(HaveOccurred())
	return f, kv
}

// sink is an in-memory raft.SnapshotSink.
type sink struct {
	bytes.Buffer
	closed bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { return nil }
func (s *sink) Close() error  { s.closed = true; return nil }

var _ = Describe("FSM", func() {
	var (
		dir string
		f   *wraft.FSM
		kv  *bolt.KV
	)
	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		f, kv = openFSM(dir)
		DeferCleanup(func() { _ = kv.Close() })
	})

	It("applies commands and records the last index", func() {
		Expect(f.Apply(entry(1, &fsm.CreateService{Service: typestest.Service("s1", "web")}))).To(BeNil())
		Expect(f.Apply(entry(2, &fsm.CreateSecret{Secret: typestest.Secret("k1", "db-pass")}))).To(BeNil())
		Expect(f.Applied()).To(Equal(uint64(2)))
		svc, err := f.Store().GetServiceByName("web")
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.ID).To(Equal("s1"))
	})

	It("answers a failing command with its error and still moves past it", func() {
		Expect(f.Apply(entry(1, &fsm.CreateService{Service: typestest.Service("s1", "web")}))).To(BeNil())
		res := f.Apply(entry(2, &fsm.CreateService{Service: typestest.Service("s2", "web")}))
		Expect(res).To(BeAssignableToTypeOf(&state.NameTakenError{}))
		Expect(errors.Is(res.(error), state.ErrNameTaken)).To(BeTrue(), "%v", res)
		Expect(f.Applied()).To(Equal(uint64(2)))
	})

	It("applies a batch as if each command ran alone", func() {
		var seen []uint64
		f.Observe(func(index uint64, c fsm.Command) {
			Expect(c.Kind()).To(Equal(fsm.KindCreateService))
			seen = append(seen, index)
		})
		res := f.ApplyBatch([]*hraft.Log{
			entry(1, &fsm.CreateService{Service: typestest.Service("s1", "web")}),
			entry(2, &fsm.CreateService{Service: typestest.Service("s2", "web")}), // name taken
			entry(3, &fsm.CreateService{Service: typestest.Service("s3", "api")}),
			{Index: 4, Term: 1, Type: hraft.LogCommand, Data: []byte{0xff}}, // not a command
			{Index: 5, Term: 1, Type: hraft.LogNoop},
		})
		Expect(res[0]).To(BeNil())
		Expect(res[1]).To(MatchError(state.ErrNameTaken))
		Expect(res[2]).To(BeNil())
		Expect(res[3]).To(MatchError(fsm.ErrFormat))
		Expect(res[4]).To(BeNil())
		Expect(f.Applied()).To(Equal(uint64(5)))
		Expect(seen).To(Equal([]uint64{1, 3}), "only the commands applied without error are observed")
		list, err := f.Store().ListServices()
		Expect(err).NotTo(HaveOccurred())
		Expect(list).To(HaveLen(2))
	})

	It("skips entries warren.db already holds after a restart", func() {
		Expect(f.Apply(entry(1, &fsm.CreateService{Service: typestest.Service("s1", "web")}))).To(BeNil())
		Expect(f.Apply(entry(2, &fsm.DeleteService{ID: "s1"}))).To(BeNil())
		Expect(kv.Close()).To(Succeed())
		f, kv = openFSM(dir)
		Expect(f.Applied()).To(Equal(uint64(2)))
		// raft replays from its last snapshot: entry 1 again must not
		// bring the deleted service back.
		Expect(f.ApplyBatch([]*hraft.Log{
			entry(1, &fsm.CreateService{Service: typestest.Service("s1", "web")}),
			entry(2, &fsm.DeleteService{ID: "s1"}),
			entry(3, &fsm.CreateSecret{Secret: typestest.Secret("k1", "db-pass")}),
		})).To(Equal([]any{nil, nil, nil}))
		_, err := f.Store().GetService("s1")
		Expect(err).To(MatchError(state.ErrNotFound))
		_, err = f.Store().GetSecret("k1")
		Expect(err).NotTo(HaveOccurred())
		Expect(f.Applied()).To(Equal(uint64(3)))
	})

	It("restores a snapshot over different content, applied index included", func() {
		Expect(f.Apply(entry(1, &fsm.CreateService{Service: typestest.Service("s1", "web")}))).To(BeNil())
		Expect(f.Apply(entry(2, &fsm.CreateSecret{Secret: typestest.Secret("k1", "db-pass")}))).To(BeNil())
		snap, err := f.Snapshot()
		Expect(err).NotTo(HaveOccurred())
		// Writes after the snapshot was taken are not in it.
		Expect(f.Apply(entry(3, &fsm.CreateService{Service: typestest.Service("s2", "api")}))).To(BeNil())
		var out sink
		Expect(snap.Persist(&out)).To(Succeed())
		snap.Release()
		Expect(out.closed).To(BeTrue())

		other, okv := openFSM(GinkgoT().TempDir())
		DeferCleanup(func() { _ = okv.Close() })
		Expect(other.Apply(entry(7, &fsm.CreateService{Service: typestest.Service("x", "stale")}))).To(BeNil())
		Expect(other.Restore(io.NopCloser(bytes.NewReader(out.Bytes())))).To(Succeed())
		Expect(other.Applied()).To(Equal(uint64(2)))
		list, err := other.Store().ListServices()
		Expect(err).NotTo(HaveOccurred())
		Expect(list).To(HaveLen(1))
		Expect(list[0].Name).To(Equal("web"))
		_, err = other.Store().GetSecretByName("db-pass")
		Expect(err).NotTo(HaveOccurred())
	})

	It("refuses a damaged snapshot and keeps its content", func() {
		Expect(f.Apply(entry(1, &fsm.CreateService{Service: typestest.Service("s1", "web")}))).To(BeNil())
		err := f.Restore(io.NopCloser(bytes.NewReader([]byte("not a database"))))
		Expect(err).To(HaveOccurred())
		Expect(f.Applied()).To(Equal(uint64(1)))
		_, err = f.Store().GetService("s1")
		Expect(err).NotTo(HaveOccurred())
	})
})
