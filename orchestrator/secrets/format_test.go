package secrets_test

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/secrets"
)

// Wrapped keys and sealed secrets are stored in the replicated state, so
// their format is a contract with every later build of Warren.
var _ = Describe("Envelope format", func() {
	var wrapped, sealed []byte

	BeforeEach(func() {
		wrapped = mustWrap(1)
		var err error
		sealed, err = mustUnwrap(wrapped).Seal("sec-1", []byte("hunter2"), seeded(2))
		Expect(err).NotTo(HaveOccurred())
	})

	When("the random source is deterministic", func() {
		It("makes the same bytes from the same seed and different bytes from another", func() {
			Expect(mustWrap(1)).To(Equal(wrapped))
			Expect(mustWrap(3)).NotTo(Equal(wrapped))
			again, err := mustUnwrap(mustWrap(1)).Seal("sec-1", []byte("hunter2"), seeded(2))
			Expect(err).NotTo(HaveOccurred())
			Expect(again).To(Equal(sealed))
			other, err := mustUnwrap(mustWrap(1)).Seal("sec-1", []byte("hunter2"), seeded(3))
			Expect(err).NotTo(HaveOccurred())
			Expect(other).NotTo(Equal(sealed))
		})

		It("gives the pinned bytes, so stored secrets stay readable", func() {
			Expect(hex.EncodeToString(wrapped)).To(Equal("010cd87274d67084caaf0e0d369ac62c2f6fb9414c6e17981b4ce5b19bbc17b4624f0318949f3ad7c94421126a10c9cd5a2bc60b69a180527f3afe6034"))
			Expect(hex.EncodeToString(sealed)).To(Equal("011490066b778935b0bb4925e3f18778655a5bd2bea7afc2d6ca27878bd38c4f34732bbc"))
		})
	})

	When("opened with AES-256-GCM directly", func() {
		It("is version 1, the nonce, then ciphertext and tag, bound to purpose and owner", func() {
			randomness := firstBytes(1, 32+12) // the data key, then the wrapping nonce
			dek, wrapNonce := randomness[:32], randomness[32:]
			Expect(wrapped[0]).To(Equal(byte(1)))
			Expect(wrapped[1:13]).To(Equal(wrapNonce))
			Expect(gcmOpen(kekA, wrapped[1:13], wrapped[13:], "warren data key v1\x00"+clusterA)).To(Equal(dek))

			Expect(sealed[0]).To(Equal(byte(1)))
			Expect(sealed[1:13]).To(Equal(firstBytes(2, 12)))
			Expect(gcmOpen(dek, sealed[1:13], sealed[13:], "warren secret v1\x00sec-1")).To(Equal([]byte("hunter2")))
			Expect(sealed).To(HaveLen(len("hunter2") + secrets.Overhead()))
		})
	})
})

// gcmOpen is AES-GCM decryption written against the standard library only,
// as another implementation reading Warren's envelopes would.
func gcmOpen(key, nonce, ciphertext []byte, ad string) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return aead.Open(nil, nonce, ciphertext, []byte(ad))
}
