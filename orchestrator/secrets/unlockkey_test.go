package secrets_test

import (
	"bytes"
	"io"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/secrets"
)

var _ = Describe("UnlockKey", func() {
	var (
		key  []byte
		text string
	)

	BeforeEach(func() {
		var err error
		key, err = secrets.NewUnlockKey(seeded(4))
		Expect(err).NotTo(HaveOccurred())
		text, err = secrets.FormatUnlockKey(key)
		Expect(err).NotTo(HaveOccurred())
	})

	When("made, written and read back", func() {
		It("is the 32 bytes the random source gave", func() {
			Expect(key).To(Equal(firstBytes(4, 32)))
		})

		It("reads back as the same key, around spaces and line breaks", func() {
			Expect(text).To(MatchRegexp(`^WRNKEY-1-[A-Za-z0-9_-]{43}$`))
			for _, t := range []string{text, text + "\n", "  " + text + "\r\n", "\t" + text} {
				Expect(secrets.ParseUnlockKey(t)).To(Equal(key))
			}
		})

		It("is a KEK: a data key wrapped under it opens with it and with no other key", func() {
			wrapped, err := secrets.NewDataKey(key, clusterA, seeded(5))
			Expect(err).NotTo(HaveOccurred())
			_, err = secrets.Unwrap(key, clusterA, wrapped)
			Expect(err).NotTo(HaveOccurred())
			other, err := secrets.NewUnlockKey(seeded(6))
			Expect(err).NotTo(HaveOccurred())
			_, err = secrets.Unwrap(other, clusterA, wrapped)
			Expect(err).To(MatchError(secrets.ErrWrongKey))
			_, err = secrets.Unwrap(kekA, clusterA, wrapped)
			Expect(err).To(MatchError(secrets.ErrWrongKey))
		})
	})

	DescribeTable("refuses text that is not a whole key, without quoting it",
		func(mangle func(string) string, problem string) {
			bad := mangle(text)
			parsed, err := secrets.ParseUnlockKey(bad)
			Expect(err).To(MatchError(secrets.ErrInvalid))
			Expect(err.Error()).To(ContainSubstring(problem))
			Expect(parsed).To(BeNil())
			if body := strings.TrimPrefix(strings.TrimSpace(bad), secrets.UnlockKeyPrefix); len(body) > 8 {
				Expect(err.Error()).NotTo(ContainSubstring(body[:8]))
			}
		},
		Entry("empty", func(string) string { return "" }, `does not start with "WRNKEY-1-"`),
		Entry("no prefix", func(t string) string { return strings.TrimPrefix(t, secrets.UnlockKeyPrefix) }, "does not start with"),
		Entry("a join token", func(string) string { return "WRN-1-" + strings.Repeat("a", 64) }, "does not start with"),
		Entry("a later format", func(t string) string { return strings.Replace(t, "-1-", "-2-", 1) }, "does not start with"),
		Entry("cut short", func(t string) string { return t[:len(t)-1] }, "43 base64url characters: it was cut or mistyped"),
		Entry("one character too many", func(t string) string { return t + "A" }, "it was cut or mistyped"),
		Entry("a character outside base64url", func(t string) string { return t[:20] + "+" + t[21:] }, "it was cut or mistyped"),
		Entry("a space inside", func(t string) string { return t[:20] + " " + t[21:] }, "it was cut or mistyped"),
	)

	DescribeTable("NewUnlockKey passes on a failing random source",
		func(r io.Reader, want error) {
			key, err := secrets.NewUnlockKey(r)
			Expect(err).To(MatchError(want))
			Expect(key).To(BeNil())
		},
		Entry("fails at once", &failingReader{n: 0}, errBoom),
		Entry("runs dry", bytes.NewReader(make([]byte, 31)), io.ErrUnexpectedEOF),
		Entry("nil", nil, secrets.ErrInvalid),
	)

	It("FormatUnlockKey refuses a key of the wrong size", func() {
		text, err := secrets.FormatUnlockKey(make([]byte, 16))
		Expect(err).To(MatchError(secrets.ErrInvalid))
		Expect(err.Error()).To(ContainSubstring("unlock key is 16 bytes, want 32"))
		Expect(text).To(BeEmpty())
	})
})
