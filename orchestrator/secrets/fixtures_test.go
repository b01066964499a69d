package secrets_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/secrets"
)

const (
	clusterA = "cluster-a"
	clusterB = "cluster-b"
)

// KEKs are derived once for the suite: each derivation runs PBKDF2 100,000
// times, and the specs only read them.
var (
	saltA, saltB []byte
	kekA         []byte // clusterA, saltA: the key the specs use
	kekASaltB    []byte // clusterA, saltB: right cluster, wrong salt
	kekBSaltA    []byte // clusterB, saltA: wrong cluster, right salt
)

var _ = BeforeSuite(func() {
	saltA = bytes.Repeat([]byte{0xa5}, 32)
	saltB = slices.Clone(saltA)
	saltB[31] ^= 1
	var err error
	kekA, err = secrets.DeriveKEK(clusterA, saltA)
	Expect(err).NotTo(HaveOccurred())
	kekASaltB, err = secrets.DeriveKEK(clusterA, saltB)
	Expect(err).NotTo(HaveOccurred())
	kekBSaltA, err = secrets.DeriveKEK(clusterB, saltA)
	Expect(err).NotTo(HaveOccurred())
})

// seeded returns a deterministic random source, as the simulator would pass.
func seeded(seed byte) io.Reader {
	return rand.NewChaCha8([32]byte{seed})
}

// firstBytes returns the first n bytes seeded(seed) produces.
func firstBytes(seed byte, n int) []byte {
	b := make([]byte, n)
	_, _ = seeded(seed).Read(b)
	return b
}

// errBoom is what failingReader returns after its budget of bytes.
var errBoom = errors.New("entropy pool on fire")

// failingReader gives n zero bytes, then fails with errBoom.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errBoom
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

// mustWrap makes a data key for clusterA under kekA from seeded(seed).
func mustWrap(seed byte) []byte {
	GinkgoHelper()
	wrapped, err := secrets.NewDataKey(kekA, clusterA, seeded(seed))
	Expect(err).NotTo(HaveOccurred())
	return wrapped
}

// mustUnwrap opens a data key of clusterA under kekA.
func mustUnwrap(wrapped []byte) *secrets.Keyring {
	GinkgoHelper()
	k, err := secrets.Unwrap(kekA, clusterA, wrapped)
	Expect(err).NotTo(HaveOccurred())
	return k
}

// flipped returns a copy of b with mask XORed into byte i.
func flipped(b []byte, i int, mask byte) []byte {
	c := slices.Clone(b)
	c[i] ^= mask
	return c
}

// referencePBKDF2 is PBKDF2 with HMAC-SHA256 written out from RFC 8018,
// section 5.2, so DeriveKEK is checked against something other than the
// library it calls.
func referencePBKDF2(password, salt []byte, iterations, keyLen int) []byte {
	var out []byte
	for block := uint32(1); len(out) < keyLen; block++ {
		mac := hmac.New(sha256.New, password)
		mac.Write(salt)
		mac.Write(binary.BigEndian.AppendUint32(nil, block))
		u := mac.Sum(nil)
		t := slices.Clone(u)
		for range iterations - 1 {
			mac.Reset()
			mac.Write(u)
			u = mac.Sum(u[:0])
			for j := range t {
				t[j] ^= u[j]
			}
		}
		out = append(out, t...)
	}
	return out[:keyLen]
}
