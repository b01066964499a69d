package secrets_test

import (
	"encoding/hex"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/secrets"
)

var _ = Describe("DeriveKEK", func() {
	When("given a cluster ID and a 32-byte salt", func() {
		It("is PBKDF2-HMAC-SHA256 of them with 100,000 iterations, 32 bytes long", func() {
			Expect(secrets.KEKIterations).To(Equal(100_000))
			Expect(kekA).To(Equal(referencePBKDF2([]byte(clusterA), saltA, 100_000, 32)))
		})

		It("gives the pinned key, so existing clusters' keys keep unwrapping", func() {
			Expect(hex.EncodeToString(kekA)).To(Equal("57338dd9b2645651965857fd9fd55eef66096908f05fedd13b3de9a0effebeb6"))
		})

		It("depends on the iteration count", func() {
			Expect(kekA).NotTo(Equal(referencePBKDF2([]byte(clusterA), saltA, 100_000-1, 32)))
			Expect(kekA).NotTo(Equal(referencePBKDF2([]byte(clusterA), saltA, 1, 32)))
		})

		It("depends on the cluster ID and on every bit of the salt", func() {
			Expect(kekBSaltA).NotTo(Equal(kekA))
			Expect(kekASaltB).NotTo(Equal(kekA)) // saltB differs from saltA in one bit
			Expect(kekBSaltA).To(HaveLen(32))
			Expect(kekASaltB).To(HaveLen(32))
		})
	})

	DescribeTable("refuses an argument no cluster record holds",
		func(clusterID string, saltLen int, problem string) {
			kek, err := secrets.DeriveKEK(clusterID, make([]byte, saltLen))
			Expect(err).To(MatchError(secrets.ErrInvalid))
			Expect(err.Error()).To(ContainSubstring(problem))
			Expect(kek).To(BeNil())
		},
		Entry("no salt", clusterA, 0, "salt is 0 bytes, want 32: pass the cluster record's EncryptionSalt"),
		Entry("16-byte salt", clusterA, 16, "salt is 16 bytes, want 32"),
		Entry("31-byte salt", clusterA, 31, "salt is 31 bytes, want 32"),
		Entry("33-byte salt", clusterA, 33, "salt is 33 bytes, want 32"),
		Entry("empty cluster ID", "", 32, "cluster ID is empty"),
	)
})

// The reference is only as good as its own check: these are the
// PBKDF2-HMAC-SHA256 vectors of RFC 7914, section 11.
var _ = Describe("referencePBKDF2", func() {
	DescribeTable("matches the RFC 7914 test vectors",
		func(password, salt string, iterations int, want string) {
			got := referencePBKDF2([]byte(password), []byte(salt), iterations, 64)
			Expect(hex.EncodeToString(got)).To(Equal(strings.ReplaceAll(want, " ", "")))
		},
		Entry("1 iteration", "passwd", "salt", 1,
			"55ac046e56e3089fec1691c22544b605 f94185216dde0465e68b9d57c20dacbc 49ca9cccf179b645991664b39d77ef31 7c71b845b1e30bd509112041d3a19783"),
		Entry("80,000 iterations", "Password", "NaCl", 80_000,
			"4ddcd8f60b98be21830cee5ef22701f9 641a4418d04c0414aeff08876b34ab56 a1d425a1225833549adb841b51c9b317 6a272bdebba1d078478f62b397f33c8d"),
	)
})
