package api_test

import (
	"bytes"
	"context"
	"math/rand/v2"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/secrets"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

// fakeKeys is the fake manager's keyring: a data key made from a fixed
// seed.
var fakeKeys = func() *secrets.Keyring {
	kek, err := secrets.DeriveKEK("cluster-1", bytes.Repeat([]byte{1}, types.EncryptionSaltSize))
	if err != nil {
		panic(err)
	}
	src := rand.NewChaCha8([32]byte{7})
	wrapped, err := secrets.NewDataKey(kek, "cluster-1", src)
	if err != nil {
		panic(err)
	}
	k, err := secrets.Unwrap(kek, "cluster-1", wrapped)
	if err != nil {
		panic(err)
	}
	return k
}()

func (b *fakeBackend) SealSecret(_ context.Context, id string, plaintext []byte) ([]byte, error) {
	if err := b.gate(); err != nil {
		return nil, err
	}
	return fakeKeys.Seal(id, plaintext, rand.NewChaCha8([32]byte{9}))
}

var _ = Describe("Secrets", func() {
	var (
		srv    *testServer
		client *api.Client
		ctx    context.Context
	)
	BeforeEach(func() {
		ctx = context.Background()
		_, srv, client = adminOfOneServer()
	})

	It("are stored sealed, listed and inspected without their value", func() {
		info, err := client.CreateSecret(ctx, "db-password", []byte("s3cret"))
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Name).To(Equal("db-password"))
		Expect(info.Size).To(Equal(6))

		stored, err := srv.backend.store.GetSecret(info.ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(stored.Data).NotTo(ContainSubstring("s3cret"))
		Expect(fakeKeys.Open(info.ID, stored.Data)).To(Equal([]byte("s3cret")))

		list, err := client.ListSecrets(ctx, false)
		Expect(err).NotTo(HaveOccurred())
		Expect(list).To(HaveLen(1))
		Expect(list[0].Size).To(Equal(6))
		Expect(list[0].UsedBy).To(BeEmpty())

		_, err = client.CreateSecret(ctx, "db-password", []byte("again"))
		Expect(err).To(MatchError(ContainSubstring("already")))
	})

	DescribeTable("refuse a bad secret, storing nothing",
		func(name string, data []byte, message string) {
			_, err := client.CreateSecret(ctx, name, data)
			Expect(err).To(MatchError(types.ErrInvalid))
			Expect(err).To(MatchError(ContainSubstring(message)))
			list, err := client.ListSecrets(ctx, false)
			Expect(err).NotTo(HaveOccurred())
			Expect(list).To(BeEmpty())
		},
		Entry("an empty value", "empty", []byte{}, "empty"),
		Entry("a value over 1 MiB", "big", make([]byte, types.MaxSecretSize+1), "MiB"),
		Entry("a name that is not one", "Not A Name", []byte("x"), "name"),
	)

	It("refuse to delete a secret a service uses, unless forced, which takes it out of the service", func() {
		info, err := client.CreateSecret(ctx, "api-key", []byte("k-123"))
		Expect(err).NotTo(HaveOccurred())
		svc := typestest.Service("", "api")
		svc.Secrets = []string{info.ID}
		_, err = client.CreateService(ctx, svc)
		Expect(err).NotTo(HaveOccurred())

		got, err := client.GetSecret(ctx, "api-key")
		Expect(err).NotTo(HaveOccurred())
		Expect(got.UsedBy).To(Equal([]string{"api"}))

		err = client.DeleteSecret(ctx, "api-key", false)
		Expect(err).To(MatchError(fsm.ErrInUse))
		Expect(err).To(MatchError(ContainSubstring("used by service api")))

		Expect(client.DeleteSecret(ctx, "api-key", true)).To(Succeed())
		_, err = client.GetSecret(ctx, "api-key")
		Expect(err).To(MatchError(ContainSubstring("no secret")))
		after, err := client.GetService(ctx, "api")
		Expect(err).NotTo(HaveOccurred())
		Expect(after.Secrets).To(BeEmpty())
	})

	It("make a new version on update, sealed for that version, keeping the one a task uses", func() {
		info, err := client.CreateSecret(ctx, "db-password", []byte("first"))
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Version).To(Equal(1))
		t := typestest.Container("t-1", "svc-1", "")
		t.Secrets = []string{info.ID}
		Expect(srv.backend.Apply(ctx, &fsm.PlanTasks{Upsert: []*types.Container{t}})).To(Succeed())

		up, err := client.UpdateSecret(ctx, "db-password", []byte("second!"))
		Expect(err).NotTo(HaveOccurred())
		Expect(up.Version).To(Equal(2))
		Expect(up.Versions).To(Equal([]int{1, 2}))
		Expect(up.Size).To(Equal(7))

		stored, err := srv.backend.store.GetSecret(info.ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(fakeKeys.Open(types.SealedFor(info.ID, 2), stored.Data)).To(Equal([]byte("second!")))
		_, err = fakeKeys.Open(info.ID, stored.Data)
		Expect(err).To(HaveOccurred(), "version 2 does not open as version 1")
		old, ok := stored.VersionData(1)
		Expect(ok).To(BeTrue())
		Expect(fakeKeys.Open(info.ID, old)).To(Equal([]byte("first")))

		up, err = client.UpdateSecret(ctx, info.ID, []byte("third"))
		Expect(err).NotTo(HaveOccurred())
		Expect(up.Versions).To(Equal([]int{1, 3}), "no task uses version 2")
	})

	DescribeTable("refuse a bad update, changing nothing",
		func(key string, data []byte, message string) {
			_, err := client.CreateSecret(ctx, "db-password", []byte("first"))
			Expect(err).NotTo(HaveOccurred())
			_, err = client.UpdateSecret(ctx, key, data)
			Expect(err).To(MatchError(ContainSubstring(message)))
			got, err := client.GetSecret(ctx, "db-password")
			Expect(err).NotTo(HaveOccurred())
			Expect(got.Version).To(Equal(1))
		},
		Entry("an empty value", "db-password", []byte{}, "empty"),
		Entry("a value over 1 MiB", "db-password", make([]byte, types.MaxSecretSize+1), "MiB"),
		Entry("a secret that does not exist", "nope", []byte("x"), "no secret"),
	)
})
