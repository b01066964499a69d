package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/secrets"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

// fakeUnlockKey is the unlock key every fake manager accepts.
var fakeUnlockKey = bytes.Repeat([]byte{0x42}, 32)

// fakeKeyState is a fake manager's key state, kept apart from fakeBackend, whose
// harness predates it.
type fakeKeyState struct {
	unlocked bool
	// locked: RotateDataKey answers as a locked leader does.
	locked bool
	// failAfter: RotateDataKey fails after this many progress lines
	// (0: never); stopAfter: it stops, without an error and without Done.
	failAfter, stopAfter int
}

var (
	fakeKeysMu    sync.Mutex
	fakeKeyStates = map[*fakeBackend]*fakeKeyState{}
)

func keyStateOf(b *fakeBackend) *fakeKeyState {
	fakeKeysMu.Lock()
	defer fakeKeysMu.Unlock()
	st := fakeKeyStates[b]
	if st == nil {
		st = &fakeKeyState{}
		fakeKeyStates[b] = st
	}
	return st
}

var errFakeLeaderLost = fmt.Errorf("fake: %w: lost the lead mid-rotation", api.ErrNoLeader)

func (b *fakeBackend) Unlock(_ context.Context, key []byte) (*api.UnlockResult, error) {
	if !bytes.Equal(key, fakeUnlockKey) {
		return nil, fmt.Errorf("fake: %w: that is not the unlock key", api.ErrForbidden)
	}
	st := keyStateOf(b)
	fakeKeysMu.Lock()
	defer fakeKeysMu.Unlock()
	already := st.unlocked
	st.unlocked = true
	return &api.UnlockResult{Manager: b.id, AlreadyUnlocked: already}, nil
}

// RotateDataKey counts each secret as one version re-sealed, one line per
// secret.
func (b *fakeBackend) RotateDataKey(_ context.Context, progress func(api.KeyRotation)) error {
	if err := b.gate(); err != nil {
		return err
	}
	st := keyStateOf(b)
	if st.locked {
		return fmt.Errorf("%w: run `warren cluster unlock --manager %s`", api.ErrLocked, b.id)
	}
	list, err := b.store.ListSecrets()
	if err != nil {
		return err
	}
	rot := api.KeyRotation{Total: len(list), NewKEK: true}
	progress(rot)
	for i := range list {
		if st.failAfter > 0 && i+1 >= st.failAfter {
			return errFakeLeaderLost
		}
		if st.stopAfter > 0 && i+1 >= st.stopAfter {
			return nil
		}
		rot.Secrets++
		rot.Versions++
		progress(rot)
	}
	rot.Done = true
	progress(rot)
	return nil
}

var _ = Describe("ErrLocked", func() {
	It("is a conflict that says the cluster is locked", func() {
		Expect(api.ErrLocked).To(MatchError(fsm.ErrConflict))
		Expect(api.ErrLocked.Error()).To(Equal("api: the cluster is locked"))
		wrapped := fmt.Errorf("%w: run `warren cluster unlock`", api.ErrLocked)
		Expect(errors.Is(wrapped, api.ErrLocked)).To(BeTrue())
	})
})

var _ = Describe("Unlock", func() {
	var (
		ctx      context.Context
		ca       *testCA
		one, two *testServer
		admin    *api.Client
		key      string
	)

	BeforeEach(func() {
		ctx = context.Background()
		ca = newTestCA()
		clock := &testClock{t: typestest.Epoch}
		one = startServer(ca, clock, newFakeBackend("m1"))
		two = startServer(ca, clock, newFakeBackend("m2"))
		// m1 says m2 leads: an unlock must not follow it there.
		one.backend.set(func(b *fakeBackend) { b.leader = &api.Manager{ID: "m2", APIAddr: two.addr()} })
		cert := ca.issue("ops", api.RoleAdmin)
		admin = newClient(ca.clientTLS(&cert), &waits{}, one.addr(), two.addr())
		var err error
		key, err = secrets.FormatUnlockKey(fakeUnlockKey)
		Expect(err).NotTo(HaveOccurred())
	})

	When("given the right key", func() {
		It("unlocks the manager named, and only it, whether it leads or not", func() {
			res, err := admin.Unlock(ctx, one.addr(), key)
			Expect(err).NotTo(HaveOccurred())
			Expect(res).To(Equal(&api.UnlockResult{Manager: "m1"}))
			Expect(one.hits.Load()).To(Equal(int32(1)))
			Expect(two.hits.Load()).To(BeZero())
			Expect(keyStateOf(one.backend).unlocked).To(BeTrue())
			Expect(keyStateOf(two.backend).unlocked).To(BeFalse())

			again, err := admin.Unlock(ctx, one.addr(), key+"\n")
			Expect(err).NotTo(HaveOccurred())
			Expect(again.AlreadyUnlocked).To(BeTrue())
		})
	})

	DescribeTable("refuses, changing nothing",
		func(text func() string, want error, says string) {
			_, err := admin.Unlock(ctx, one.addr(), text())
			Expect(err).To(MatchError(want))
			Expect(err.Error()).To(ContainSubstring(says))
			Expect(keyStateOf(one.backend).unlocked).To(BeFalse())
		},
		Entry("a wrong key", func() string {
			k, _ := secrets.FormatUnlockKey(bytes.Repeat([]byte{7}, 32))
			return k
		}, api.ErrForbidden, "not the unlock key"),
		Entry("a key cut short, without quoting it", func() string { return key[:30] }, api.ErrBadRequest, "it was cut or mistyped"),
		Entry("a join token", func() string { return "WRN-1-abc" }, api.ErrBadRequest, `does not start with "WRNKEY-1-"`),
	)

	It("needs a manager to send the key to", func() {
		_, err := admin.Unlock(ctx, "", key)
		Expect(err).To(MatchError(api.ErrBadRequest))
		Expect(err.Error()).To(ContainSubstring("each manager is unlocked by itself"))
		Expect(one.hits.Load() + two.hits.Load()).To(BeZero())
	})

	It("is for admins only", func() {
		cert := ca.issue("w1", api.RoleWorker)
		worker := newClient(ca.clientTLS(&cert), &waits{}, one.addr())
		_, err := worker.Unlock(ctx, one.addr(), key)
		Expect(err).To(MatchError(api.ErrForbidden))
		Expect(err.Error()).To(ContainSubstring("POST /v1/cluster/unlock needs a certificate of role admin"))
		Expect(keyStateOf(one.backend).unlocked).To(BeFalse())
	})
})

var _ = Describe("RotateDataKey", func() {
	var (
		ctx      context.Context
		leader   *testServer
		follower *testServer
		admin    *api.Client
		lines    []api.KeyRotation
		last     *api.KeyRotation
		err      error
	)

	BeforeEach(func() {
		ctx = context.Background()
		ca := newTestCA()
		clock := &testClock{t: typestest.Epoch}
		leader = startServer(ca, clock, newFakeBackend("m2"))
		follower = startServer(ca, clock, newFakeBackend("m1"))
		follower.backend.set(func(b *fakeBackend) { b.leader = &api.Manager{ID: "m2", APIAddr: leader.addr()} })
		cert := ca.issue("ops", api.RoleAdmin)
		admin = newClient(ca.clientTLS(&cert), &waits{}, follower.addr())
		for i := range 3 {
			s := typestest.Secret(fmt.Sprintf("sec-%d", i), fmt.Sprintf("s%d", i))
			Expect(fsm.Apply(leader.backend.store, &fsm.CreateSecret{Secret: s})).To(Succeed())
		}
		lines = nil
	})

	JustBeforeEach(func() {
		last, err = admin.RotateDataKey(ctx, func(p api.KeyRotation) { lines = append(lines, p) })
	})

	When("the rotation runs to its end", func() {
		It("follows the leader and streams each line, returning the last", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(follower.hits.Load()).To(Equal(int32(1)))
			Expect(leader.hits.Load()).To(Equal(int32(1)))
			Expect(lines).To(HaveLen(5)) // the start, a line per secret, done
			Expect(lines[0]).To(Equal(api.KeyRotation{Total: 3, NewKEK: true}))
			Expect(last).To(Equal(&api.KeyRotation{Total: 3, NewKEK: true, Secrets: 3, Versions: 3, Done: true}))
		})
	})

	When("the leader is locked", func() {
		BeforeEach(func() { keyStateOf(leader.backend).locked = true })

		It("is an ordinary error answer that says how to unlock", func() {
			Expect(err).To(MatchError(fsm.ErrConflict))
			Expect(err.Error()).To(ContainSubstring("the cluster is locked: run `warren cluster unlock"))
			Expect(lines).To(BeEmpty())
			Expect(last).To(BeNil())
		})
	})

	When("the leader fails part way", func() {
		BeforeEach(func() { keyStateOf(leader.backend).failAfter = 2 })

		It("returns the error it ended the stream with, after the lines before it", func() {
			Expect(err).To(MatchError(api.ErrNoLeader))
			Expect(err.Error()).To(ContainSubstring("lost the lead mid-rotation"))
			Expect(lines).To(HaveLen(2))
			Expect(last).To(BeNil())
		})
	})

	When("the stream ends before the rotation is done", func() {
		BeforeEach(func() { keyStateOf(leader.backend).stopAfter = 2 })

		It("says to run it again to finish it", func() {
			Expect(err).To(MatchError(api.ErrUnavailable))
			Expect(err.Error()).To(ContainSubstring("run `warren secret rotate-key` again to finish it"))
			Expect(last).To(BeNil())
		})
	})
})
