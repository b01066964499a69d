package dispatcher_test

import (
	"math/rand/v2"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	gtypes "github.com/onsi/gomega/types"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/secrets"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("WithSecrets", func() {
	var (
		store  state.Store
		keys   *secrets.Keyring
		opened []string // what open was asked to open, in order
		open   dispatcher.Opener
		as     []agent.Assignment
		out    []agent.Assignment
		err    error
	)
	// seal seals version v of secret id as the API and the simulator do.
	seal := func(id string, v int, plain string) []byte {
		b, err := keys.Seal(types.SealedFor(id, v), []byte(plain), rand.NewChaCha8([32]byte{byte(v)}))
		Expect(err).NotTo(HaveOccurred())
		return b
	}
	task := func(id string, secretIDs []string, versions map[string]int) *types.Container {
		t := typestest.Container(id, "svc-1", "node-1")
		t.Secrets, t.SecretVersions = secretIDs, versions
		return t
	}

	BeforeEach(func() {
		src := rand.NewChaCha8([32]byte{42})
		kek := make([]byte, 32)
		_, _ = src.Read(kek)
		wrapped, err := secrets.NewDataKey(kek, "cluster-1", src)
		Expect(err).NotTo(HaveOccurred())
		keys, err = secrets.Unwrap(kek, "cluster-1", wrapped)
		Expect(err).NotTo(HaveOccurred())
		opened, as = nil, nil
		open = func(sealedFor string, sealed []byte) ([]byte, error) {
			opened = append(opened, sealedFor)
			return keys.Open(sealedFor, sealed)
		}

		store = state.NewMemory()
		db := typestest.Secret("sec-db", "db-password")
		db.Version, db.Data = 2, seal("sec-db", 2, "correct horse")
		db.Previous = []*types.SecretVersion{{Version: 1, Data: seal("sec-db", 1, "hunter2"), CreatedAt: typestest.Epoch}}
		api := typestest.Secret("sec-api", "api-key")
		api.Data = seal("sec-api", 1, "s3cr3t")
		Expect(store.UpdateSecret(db)).To(Succeed())
		Expect(store.UpdateSecret(api)).To(Succeed())
	})

	JustBeforeEach(func() {
		out, err = dispatcher.WithSecrets(store, as, open)
	})

	When("no task meant to run uses a secret", func() {
		BeforeEach(func() {
			stopping := task("t-stopping", []string{"sec-db"}, nil)
			stopping.DesiredState = types.ContainerShutdown
			as = []agent.Assignment{{Task: task("t-plain", nil, nil)}, {Task: stopping}}
		})

		It("returns the assignments as they are and opens nothing", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(out).To(HaveLen(2))
			Expect(&out[0]).To(BeIdenticalTo(&as[0]), "the same slice, not a copy")
			Expect(out[1].Secrets).To(BeNil())
			Expect(opened).To(BeEmpty())
		})
	})

	When("tasks meant to run use secrets", func() {
		BeforeEach(func() {
			stopping := task("t-stopping", []string{"sec-api"}, nil)
			stopping.DesiredState = types.ContainerShutdown
			as = []agent.Assignment{
				{Task: task("t-old", []string{"sec-db", "sec-api"}, nil)},
				{Task: task("t-new", []string{"sec-db"}, map[string]int{"sec-db": 2})},
				{Task: task("t-plain", nil, nil)},
				{Task: stopping},
			}
		})

		It("gives each the plaintext of the secrets it uses, by name, at the version it was made with", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(out[0].Secrets).To(Equal(map[string][]byte{"db-password": []byte("hunter2"), "api-key": []byte("s3cr3t")}))
			Expect(out[1].Secrets).To(Equal(map[string][]byte{"db-password": []byte("correct horse")}))
			Expect(opened).To(Equal([]string{"sec-db", "sec-api", "sec-db@v2"}))
		})

		It("gives nothing to a task that uses none or is meant to stop", func() {
			Expect(out[2].Secrets).To(BeNil())
			Expect(out[3].Secrets).To(BeNil(), "a stopping task keeps what it has; it is sent nothing")
		})

		It("leaves the assignments it was given unchanged", func() {
			for _, a := range as {
				Expect(a.Secrets).To(BeNil())
			}
		})
	})

	When("a secret was deleted with --force", func() {
		BeforeEach(func() {
			as = []agent.Assignment{{Task: task("t-1", []string{"sec-gone", "sec-api"}, nil)}}
		})

		It("skips it and delivers the others", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(out[0].Secrets).To(Equal(map[string][]byte{"api-key": []byte("s3cr3t")}))
		})
	})

	DescribeTable("refuses what it cannot deliver as the task needs",
		func(prepare func(), match gtypes.GomegaMatcher) {
			prepare()
			_, err := dispatcher.WithSecrets(store, as, open)
			Expect(err).To(match)
		},
		Entry("a version the secret no longer keeps",
			func() { as = []agent.Assignment{{Task: task("t-1", []string{"sec-db"}, map[string]int{"sec-db": 3})}} },
			SatisfyAll(MatchError(dispatcher.ErrSecretVersionGone), MatchError(ContainSubstring("secret db-password has no version 3, which task t-1 was made with")))),
		Entry("a value sealed for another secret",
			func() {
				s, err := store.GetSecret("sec-api")
				Expect(err).NotTo(HaveOccurred())
				s.Data = seal("sec-db", 1, "hunter2")
				Expect(store.UpdateSecret(s)).To(Succeed())
				as = []agent.Assignment{{Task: task("t-1", []string{"sec-api"}, nil)}}
			},
			SatisfyAll(MatchError(secrets.ErrDamaged), MatchError(ContainSubstring("open secret api-key for task t-1")))),
		Entry("a version's value sealed as another version",
			func() {
				s, err := store.GetSecret("sec-db")
				Expect(err).NotTo(HaveOccurred())
				s.Data = seal("sec-db", 1, "correct horse") // version 2, sealed for version 1
				Expect(store.UpdateSecret(s)).To(Succeed())
				as = []agent.Assignment{{Task: task("t-1", []string{"sec-db"}, map[string]int{"sec-db": 2})}}
			},
			MatchError(secrets.ErrDamaged)),
	)
})
