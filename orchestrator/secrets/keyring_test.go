package secrets_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/secrets"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

var _ = Describe("Keyring", func() {
	var (
		keyring   *secrets.Keyring
		id        string
		plaintext []byte
		random    io.Reader
		sealed    []byte
		err       error
	)

	BeforeEach(func() {
		keyring = mustUnwrap(mustWrap(1))
		id = "sec-1"
		plaintext = []byte("correct horse battery staple")
		random = seeded(7)
	})

	JustBeforeEach(func() {
		sealed, err = keyring.Seal(id, plaintext, random)
	})

	When("sealing a valid secret", func() {
		It("opens again under the same secret ID", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(keyring.Open(id, sealed)).To(Equal(plaintext))
		})

		It("adds exactly Overhead() bytes, within what stored records allow", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(secrets.Overhead()).To(Equal(1 + 12 + 16)) // version, nonce, tag
			Expect(sealed).To(HaveLen(len(plaintext) + secrets.Overhead()))
			Expect(secrets.Overhead()).To(BeNumerically("<=", types.MaxSealOverhead))
		})

		It("hides the plaintext", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(bytes.Contains(sealed, plaintext)).To(BeFalse())
			Expect(bytes.Contains(sealed, []byte("horse"))).To(BeFalse())
		})

		It("uses a fresh nonce each time, so sealing the same plaintext twice differs", func() {
			again, err := keyring.Seal(id, plaintext, random)
			Expect(err).NotTo(HaveOccurred())
			Expect(again).NotTo(Equal(sealed))
			Expect(again[1:13]).NotTo(Equal(sealed[1:13]))
			Expect(keyring.Open(id, again)).To(Equal(plaintext))
			Expect(keyring.Open(id, sealed)).To(Equal(plaintext))
		})

		It("does not open under another secret's ID", func() {
			Expect(err).NotTo(HaveOccurred())
			opened, err := keyring.Open("sec-2", sealed)
			Expect(err).To(MatchError(secrets.ErrDamaged))
			Expect(err.Error()).To(ContainSubstring(`secret "sec-2" does not open`))
			Expect(err.Error()).To(ContainSubstring("sealed for another secret"))
			Expect(opened).To(BeNil())
		})

		It("does not open under another data key", func() {
			Expect(err).NotTo(HaveOccurred())
			_, err := mustUnwrap(mustWrap(2)).Open(id, sealed)
			Expect(err).To(MatchError(secrets.ErrDamaged))
		})

		It("fails with ErrDamaged on a flipped bit in any byte", func() {
			Expect(err).NotTo(HaveOccurred())
			var opened []string
			for i := range sealed {
				for _, mask := range []byte{0x01, 0x80} {
					if _, err := keyring.Open(id, flipped(sealed, i, mask)); !errors.Is(err, secrets.ErrDamaged) {
						opened = append(opened, fmt.Sprintf("byte %d mask %#x: %v", i, mask, err))
					}
				}
			}
			Expect(opened).To(BeEmpty())
		})

		It("fails with ErrDamaged when truncated to any length or extended", func() {
			Expect(err).NotTo(HaveOccurred())
			var opened []string
			for n := range len(sealed) {
				if _, err := keyring.Open(id, sealed[:n]); !errors.Is(err, secrets.ErrDamaged) {
					opened = append(opened, fmt.Sprintf("length %d: %v", n, err))
				}
			}
			Expect(opened).To(BeEmpty())
			_, err := keyring.Open(id, append(sealed[:len(sealed):len(sealed)], 0))
			Expect(err).To(MatchError(secrets.ErrDamaged))
			_, err = keyring.Open(id, sealed[:secrets.Overhead()-1])
			Expect(err).To(MatchError(ContainSubstring("shorter than the 29-byte envelope")))
		})

		It("names an unknown format version", func() {
			Expect(err).NotTo(HaveOccurred())
			future := flipped(sealed, 0, 0x03) // version 1 -> 2
			_, err := keyring.Open(id, future)
			Expect(err).To(MatchError(secrets.ErrDamaged))
			Expect(err.Error()).To(ContainSubstring("format version 2 and this build reads only 1"))
		})

		It("prints no key material", func() {
			dek := firstBytes(1, 32) // mustWrap(1) reads the data key first
			for _, s := range []string{fmt.Sprint(keyring), fmt.Sprintf("%+v", *keyring), fmt.Sprintf("%#v", keyring)} {
				Expect(s).NotTo(ContainSubstring(string(dek)))
				Expect(s).NotTo(ContainSubstring(hex.EncodeToString(dek)))
				Expect(s).NotTo(ContainSubstring(hex.EncodeToString(dek[:4])))
			}
		})
	})

	When("the secret is as large as allowed", func() {
		BeforeEach(func() { plaintext = bytes.Repeat([]byte{'x'}, types.MaxSecretSize) })

		It("seals it into data a Secret record accepts", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(sealed).To(HaveLen(types.MaxSecretSize + secrets.Overhead()))
			rec := &types.Secret{ID: id, Name: "big", Data: sealed}
			Expect(rec.Validate()).To(Succeed())
			Expect(keyring.Open(id, sealed)).To(Equal(plaintext))
		})
	})

	When("the random source fails", func() {
		BeforeEach(func() { random = &failingReader{n: 5} })

		It("returns its error and no sealed data", func() {
			Expect(err).To(MatchError(errBoom))
			Expect(err.Error()).To(ContainSubstring("read 12 random bytes for a nonce"))
			Expect(sealed).To(BeNil())
		})
	})

	DescribeTable("refuses to seal a plaintext types.ValidateSecretData refuses, with its error",
		func(size int, problem string) {
			sealed, err := keyring.Seal("sec-1", make([]byte, size), seeded(7))
			Expect(err).To(MatchError(types.ErrInvalid))
			Expect(err).To(MatchError(types.ValidateSecretData(make([]byte, size))))
			Expect(err.Error()).To(ContainSubstring(problem))
			Expect(sealed).To(BeNil())
		},
		Entry("empty", 0, "secret data is empty"),
		Entry("1 MiB + 1", types.MaxSecretSize+1, "more than the limit of 1048576 (1 MiB)"),
	)

	DescribeTable("refuses a missing secret ID or data key",
		func(keyringOf func() *secrets.Keyring, secretID, problem string) {
			k := keyringOf()
			sealed, err := k.Seal(secretID, []byte("x"), seeded(7))
			Expect(err).To(MatchError(secrets.ErrInvalid))
			Expect(err.Error()).To(ContainSubstring(problem))
			Expect(sealed).To(BeNil())
			opened, err := k.Open(secretID, make([]byte, 64))
			Expect(err).To(MatchError(secrets.ErrInvalid))
			Expect(opened).To(BeNil())
		},
		Entry("empty secret ID", func() *secrets.Keyring { return keyring }, "", "secret ID is empty: pass the ID of the secret's record"),
		Entry("zero Keyring", func() *secrets.Keyring { return &secrets.Keyring{} }, "sec-1", "the keyring has no data key: get one from Unwrap"),
		Entry("nil Keyring", func() *secrets.Keyring { return nil }, "sec-1", "the keyring has no data key"),
	)
})
