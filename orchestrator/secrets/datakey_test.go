package secrets_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/secrets"
)

var _ = Describe("NewDataKey", func() {
	It("makes a different data key each time the random source differs", func() {
		sealed, err := mustUnwrap(mustWrap(1)).Seal("sec-1", []byte("hunter2"), seeded(9))
		Expect(err).NotTo(HaveOccurred())
		_, err = mustUnwrap(mustWrap(2)).Open("sec-1", sealed)
		Expect(err).To(MatchError(secrets.ErrDamaged))
	})

	DescribeTable("passes on a failing random source",
		func(r io.Reader, want error) {
			wrapped, err := secrets.NewDataKey(kekA, clusterA, r)
			Expect(err).To(MatchError(want))
			Expect(wrapped).To(BeNil())
		},
		Entry("fails at once", &failingReader{n: 0}, errBoom),
		Entry("fails within the data key", &failingReader{n: 31}, errBoom),
		Entry("fails at the nonce", &failingReader{n: 40}, errBoom),
		Entry("runs dry within the data key", bytes.NewReader(make([]byte, 31)), io.ErrUnexpectedEOF),
		Entry("runs dry within the nonce", bytes.NewReader(make([]byte, 40)), io.ErrUnexpectedEOF),
		Entry("nil", nil, secrets.ErrInvalid),
	)

	DescribeTable("refuses arguments Unwrap could never use",
		func(kek []byte, clusterID, problem string) {
			wrapped, err := secrets.NewDataKey(kek, clusterID, seeded(1))
			Expect(err).To(MatchError(secrets.ErrInvalid))
			Expect(err.Error()).To(ContainSubstring(problem))
			Expect(wrapped).To(BeNil())
		},
		Entry("no KEK", nil, clusterA, "KEK is 0 bytes, want 32: derive it with DeriveKEK"),
		Entry("a 16-byte KEK", make([]byte, 16), clusterA, "KEK is 16 bytes"),
		Entry("an empty cluster ID", make([]byte, 32), "", "cluster ID is empty"),
	)
})

var _ = Describe("Unwrap", func() {
	var (
		wrapped []byte
		kek     []byte
		cluster string
		keyring *secrets.Keyring
		err     error
	)

	BeforeEach(func() {
		wrapped = mustWrap(1)
		kek, cluster = kekA, clusterA
	})

	JustBeforeEach(func() {
		keyring, err = secrets.Unwrap(kek, cluster, wrapped)
	})

	When("given the KEK and cluster ID the data key was made with", func() {
		It("returns a keyring with the same data key each time", func() {
			Expect(err).NotTo(HaveOccurred())
			sealed, err := keyring.Seal("sec-1", []byte("hunter2"), seeded(9))
			Expect(err).NotTo(HaveOccurred())
			opened, err := mustUnwrap(wrapped).Open("sec-1", sealed)
			Expect(err).NotTo(HaveOccurred())
			Expect(opened).To(Equal([]byte("hunter2")))
		})
	})

	When("the wrapped key was altered", func() {
		It("fails on a flipped bit anywhere: ErrDamaged in the version byte, ErrWrongKey elsewhere", func() {
			Expect(err).NotTo(HaveOccurred()) // the unaltered key opens
			var opened []string
			for i := range wrapped {
				for _, mask := range []byte{0x01, 0x80} {
					_, err := secrets.Unwrap(kekA, clusterA, flipped(wrapped, i, mask))
					want := secrets.ErrWrongKey
					if i == 0 {
						want = secrets.ErrDamaged
					}
					if !errors.Is(err, want) {
						opened = append(opened, fmt.Sprintf("byte %d mask %#x: %v", i, mask, err))
					}
				}
			}
			Expect(opened).To(BeEmpty())
		})

		It("fails with ErrDamaged on a wrong length, naming it", func() {
			for _, altered := range [][]byte{nil, wrapped[:1], wrapped[:len(wrapped)-1], append(wrapped[:len(wrapped):len(wrapped)], 0)} {
				_, err := secrets.Unwrap(kekA, clusterA, altered)
				Expect(err).To(MatchError(secrets.ErrDamaged))
				Expect(err.Error()).To(ContainSubstring(fmt.Sprintf("the wrapped data key is %d bytes, want 61", len(altered))))
			}
		})
	})

	When("the KEK is not 32 bytes", func() {
		BeforeEach(func() { kek = kekA[:31] })

		It("fails with ErrInvalid", func() {
			Expect(err).To(MatchError(secrets.ErrInvalid))
			Expect(err.Error()).To(ContainSubstring("KEK is 31 bytes, want 32"))
			Expect(keyring).To(BeNil())
		})
	})
})

// The wrong-key cases act in their table body, so they sit apart from the
// Unwrap specs above, whose JustBeforeEach unwraps with the right key.
var _ = Describe("Unwrap", func() {
	DescribeTable("fails with ErrWrongKey given the wrong key, and says how the KEK is made",
		func(kek *[]byte, clusterID string) {
			keyring, err := secrets.Unwrap(*kek, clusterID, mustWrap(1))
			Expect(err).To(MatchError(secrets.ErrWrongKey))
			Expect(err.Error()).To(ContainSubstring(fmt.Sprintf("the data key of cluster %q does not open", clusterID)))
			Expect(err.Error()).To(ContainSubstring("derive it from the cluster record's ID and EncryptionSalt"))
			Expect(keyring).To(BeNil())
		},
		Entry("a KEK from another cluster ID", &kekBSaltA, clusterB),
		Entry("a KEK from another salt", &kekASaltB, clusterA),
		Entry("the right KEK with another cluster ID", &kekA, clusterB),
	)
})

var _ = Describe("Rewrap", func() {
	var (
		wrapped, rewrapped []byte
		oldKEK, newKEK     []byte
		sealed             []byte
		err                error
	)

	BeforeEach(func() {
		wrapped = mustWrap(1)
		oldKEK, newKEK = kekA, kekASaltB // a rotation to a new salt
		sealed, err = mustUnwrap(wrapped).Seal("sec-1", []byte("hunter2"), seeded(9))
		Expect(err).NotTo(HaveOccurred())
	})

	JustBeforeEach(func() {
		rewrapped, err = secrets.Rewrap(oldKEK, newKEK, clusterA, wrapped, seeded(3))
	})

	When("given the KEK the data key is wrapped under", func() {
		It("wraps the same data key under the new KEK, so old secrets still open", func() {
			Expect(err).NotTo(HaveOccurred())
			keyring, err := secrets.Unwrap(newKEK, clusterA, rewrapped)
			Expect(err).NotTo(HaveOccurred())
			Expect(keyring.Open("sec-1", sealed)).To(Equal([]byte("hunter2")))
		})

		It("gives a key the old KEK no longer unwraps", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(rewrapped).To(HaveLen(len(wrapped)))
			_, err := secrets.Unwrap(oldKEK, clusterA, rewrapped)
			Expect(err).To(MatchError(secrets.ErrWrongKey))
		})
	})

	When("the old KEK is wrong", func() {
		BeforeEach(func() { oldKEK = kekBSaltA })

		It("fails with ErrWrongKey and wraps nothing", func() {
			Expect(err).To(MatchError(secrets.ErrWrongKey))
			Expect(rewrapped).To(BeNil())
		})
	})

	When("the new KEK is not 32 bytes", func() {
		BeforeEach(func() { newKEK = kekASaltB[:16] })

		It("fails with ErrInvalid naming the new KEK", func() {
			Expect(err).To(MatchError(secrets.ErrInvalid))
			Expect(err.Error()).To(ContainSubstring("new KEK is 16 bytes"))
			Expect(rewrapped).To(BeNil())
		})
	})
})
