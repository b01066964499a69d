package secrets_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/secrets"
)

var _ = Describe("RotateDataKey", func() {
	var (
		current        []byte
		oldKEK, newKEK []byte
		next, previous []byte
		err            error
	)

	BeforeEach(func() {
		current = mustWrap(1)
		oldKEK, newKEK = kekA, kekASaltB // a rotation that changes the salt too
	})

	JustBeforeEach(func() {
		next, previous, err = secrets.RotateDataKey(oldKEK, newKEK, clusterA, current, seeded(8))
	})

	When("given the KEK the current data key is wrapped under", func() {
		It("makes a new data key, and keeps the current one as the previous, both under the new KEK", func() {
			Expect(err).NotTo(HaveOccurred())
			sealedBefore, err := mustUnwrap(current).Seal("sec-1", []byte("old"), seeded(9))
			Expect(err).NotTo(HaveOccurred())

			onlyNext, err := secrets.Unwrap(newKEK, clusterA, next)
			Expect(err).NotTo(HaveOccurred())
			_, err = onlyNext.Open("sec-1", sealedBefore)
			Expect(err).To(MatchError(secrets.ErrDamaged), "the new data key is not the old one")

			onlyPrevious, err := secrets.Unwrap(newKEK, clusterA, previous)
			Expect(err).NotTo(HaveOccurred())
			Expect(onlyPrevious.Open("sec-1", sealedBefore)).To(Equal([]byte("old")))
		})

		It("gives keys the old KEK no longer unwraps", func() {
			Expect(err).NotTo(HaveOccurred())
			_, err := secrets.Unwrap(oldKEK, clusterA, next)
			Expect(err).To(MatchError(secrets.ErrWrongKey))
			_, err = secrets.Unwrap(oldKEK, clusterA, previous)
			Expect(err).To(MatchError(secrets.ErrWrongKey))
		})
	})

	When("the KEK stays (an autolocked cluster's unlock key)", func() {
		BeforeEach(func() { newKEK = kekA })

		It("makes a new data key under the same KEK", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(next).NotTo(Equal(current))
			_, err := secrets.UnwrapWithPrevious(kekA, clusterA, next, previous)
			Expect(err).NotTo(HaveOccurred())
		})
	})

	When("the old KEK is wrong", func() {
		BeforeEach(func() { oldKEK = kekBSaltA })

		It("fails with ErrWrongKey and makes nothing", func() {
			Expect(err).To(MatchError(secrets.ErrWrongKey))
			Expect(next).To(BeNil())
			Expect(previous).To(BeNil())
		})
	})
})

var _ = Describe("UnwrapWithPrevious", func() {
	var (
		oldKeys           *secrets.Keyring // before the rotation
		next, previous    []byte
		keys              *secrets.Keyring // during it
		sealedOld         []byte           // sealed before the rotation
		sealedNew         []byte           // sealed during it
		err               error
		plaintext, secret = []byte("hunter2"), "sec-1"
	)

	BeforeEach(func() {
		current := mustWrap(1)
		oldKeys = mustUnwrap(current)
		sealedOld, err = oldKeys.Seal(secret, plaintext, seeded(9))
		Expect(err).NotTo(HaveOccurred())
		next, previous, err = secrets.RotateDataKey(kekA, kekA, clusterA, current, seeded(8))
		Expect(err).NotTo(HaveOccurred())
		keys, err = secrets.UnwrapWithPrevious(kekA, clusterA, next, previous)
		Expect(err).NotTo(HaveOccurred())
		sealedNew, err = keys.Seal(secret, plaintext, seeded(10))
		Expect(err).NotTo(HaveOccurred())
	})

	When("a rotation is in progress", func() {
		It("opens secrets sealed under the current key, falling back to the previous one", func() {
			Expect(keys.Rotating()).To(BeTrue())
			Expect(keys.Open(secret, sealedOld)).To(Equal(plaintext))
			Expect(keys.Open(secret, sealedNew)).To(Equal(plaintext))
		})

		It("seals under the new key only: a keyring without it cannot open what it seals", func() {
			_, err := oldKeys.Open(secret, sealedNew)
			Expect(err).To(MatchError(secrets.ErrDamaged))
			Expect(err.Error()).To(ContainSubstring("under another cluster's data key"))
			onlyNext, err := secrets.Unwrap(kekA, clusterA, next)
			Expect(err).NotTo(HaveOccurred())
			Expect(onlyNext.Open(secret, sealedNew)).To(Equal(plaintext))
		})

		It("still binds each secret to its ID under the previous key", func() {
			_, err := keys.Open("sec-2", sealedOld)
			Expect(err).To(MatchError(secrets.ErrDamaged))
		})

		It("names both keys when a secret opens under neither", func() {
			stranger, err := mustUnwrap(mustWrap(3)).Seal(secret, plaintext, seeded(11))
			Expect(err).NotTo(HaveOccurred())
			_, err = keys.Open(secret, stranger)
			Expect(err).To(MatchError(secrets.ErrDamaged))
			Expect(err.Error()).To(ContainSubstring("under neither this cluster's data key nor the one `secret rotate-key` is replacing"))
		})
	})

	When("no rotation is in progress", func() {
		It("is Unwrap: no fallback to a key the cluster dropped", func() {
			k, err := secrets.UnwrapWithPrevious(kekA, clusterA, next, nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(k.Rotating()).To(BeFalse())
			Expect(k.Open(secret, sealedNew)).To(Equal(plaintext))
			_, err = k.Open(secret, sealedOld)
			Expect(err).To(MatchError(secrets.ErrDamaged))
		})
	})

	DescribeTable("fails with ErrWrongKey when either key does not open, returning no keyring",
		func(kek *[]byte, wrappedNext, wrappedPrevious func() []byte, says string) {
			k, err := secrets.UnwrapWithPrevious(*kek, clusterA, wrappedNext(), wrappedPrevious())
			Expect(err).To(MatchError(secrets.ErrWrongKey))
			Expect(err.Error()).To(ContainSubstring(says))
			Expect(k).To(BeNil())
		},
		Entry("a wrong KEK", &kekASaltB, func() []byte { return next }, func() []byte { return previous }, "does not open"),
		Entry("a previous key under another KEK", &kekA, func() []byte { return next },
			func() []byte { return flipped(previous, 20, 1) }, "the previous data key (of a rotation in progress)"),
	)
})

var _ = Describe("Keyring.Reseal", func() {
	var (
		keys      *secrets.Keyring
		onlyNext  *secrets.Keyring
		sealedOld []byte
		secret    = "sec-1@v2"
	)

	BeforeEach(func() {
		current := mustWrap(1)
		var err error
		sealedOld, err = mustUnwrap(current).Seal(secret, []byte("v2 value"), seeded(9))
		Expect(err).NotTo(HaveOccurred())
		next, previous, err := secrets.RotateDataKey(kekA, kekA, clusterA, current, seeded(8))
		Expect(err).NotTo(HaveOccurred())
		keys, err = secrets.UnwrapWithPrevious(kekA, clusterA, next, previous)
		Expect(err).NotTo(HaveOccurred())
		onlyNext, err = secrets.Unwrap(kekA, clusterA, next)
		Expect(err).NotTo(HaveOccurred())
	})

	It("seals a secret under the previous key again under the current one, and leaves it alone after", func() {
		out, resealed, err := keys.Reseal(secret, sealedOld, seeded(12))
		Expect(err).NotTo(HaveOccurred())
		Expect(resealed).To(BeTrue())
		Expect(out).NotTo(Equal(sealedOld))
		Expect(onlyNext.Open(secret, out)).To(Equal([]byte("v2 value")))

		again, resealed, err := keys.Reseal(secret, out, seeded(13))
		Expect(err).NotTo(HaveOccurred())
		Expect(resealed).To(BeFalse())
		Expect(again).To(Equal(out))
	})

	It("fails as Open does on damaged data or another secret's, changing nothing", func() {
		for _, c := range []struct {
			id     string
			sealed []byte
		}{{secret, flipped(sealedOld, 30, 1)}, {"sec-1", sealedOld}, {secret, sealedOld[:10]}} {
			before := append([]byte(nil), c.sealed...)
			out, resealed, err := keys.Reseal(c.id, c.sealed, seeded(12))
			Expect(err).To(MatchError(secrets.ErrDamaged))
			Expect(resealed).To(BeFalse())
			Expect(out).To(BeNil())
			Expect(c.sealed).To(Equal(before))
		}
	})

	It("passes on a failing random source", func() {
		out, resealed, err := keys.Reseal(secret, sealedOld, &failingReader{n: 0})
		Expect(err).To(MatchError(errBoom))
		Expect(resealed).To(BeFalse())
		Expect(out).To(BeNil())
	})

	It("refuses with the zero keyring", func() {
		_, _, err := (&secrets.Keyring{}).Reseal(secret, sealedOld, seeded(12))
		Expect(err).To(MatchError(secrets.ErrInvalid))
	})
})
