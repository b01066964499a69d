package pki_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/pki"
)

func fileMode(path string) fs.FileMode {
	GinkgoHelper()
	info, err := os.Stat(path)
	Expect(err).NotTo(HaveOccurred())
	return info.Mode().Perm()
}

var _ = Describe("CA files", func() {
	var (
		dir string
		ca  *pki.CA
	)

	BeforeEach(func() {
		dir = filepath.Join(GinkgoT().TempDir(), "pki")
		var err error
		ca, err = pki.NewCA("c1", t0)
		Expect(err).NotTo(HaveOccurred())
	})

	When("the CA is saved", func() {
		JustBeforeEach(func() {
			Expect(ca.Save(dir)).To(Succeed())
		})

		It("writes ca.crt 0644 and ca.key 0600 and nothing else", func() {
			Expect(fileMode(filepath.Join(dir, "ca.crt"))).To(Equal(fs.FileMode(0o644)))
			Expect(fileMode(filepath.Join(dir, "ca.key"))).To(Equal(fs.FileMode(0o600)))
			entries, err := os.ReadDir(dir)
			Expect(err).NotTo(HaveOccurred())
			Expect(entries).To(HaveLen(2))
		})

		It("loads back the same CA, able to sign", func() {
			loaded, err := pki.LoadCA(dir)
			Expect(err).NotTo(HaveOccurred())
			Expect(loaded.Digest()).To(Equal(ca.Digest()))
			leaf, err := loaded.Issue(pki.Request{CommonName: "n", Role: pki.RoleWorker}, t0)
			Expect(err).NotTo(HaveOccurred())
			Expect(leaf.Leaf.CheckSignatureFrom(ca.Cert)).To(Succeed())
		})

		It("loads back as a pool that verifies its leaves", func() {
			pool, err := pki.LoadCAPool(dir)
			Expect(err).NotTo(HaveOccurred())
			Expect(pool.Equal(ca.Pool())).To(BeTrue())
		})

		It("replaces an earlier CA", func() {
			other, err := pki.NewCA("c1", t0)
			Expect(err).NotTo(HaveOccurred())
			Expect(other.Save(dir)).To(Succeed())
			loaded, err := pki.LoadCA(dir)
			Expect(err).NotTo(HaveOccurred())
			Expect(loaded.Digest()).To(Equal(other.Digest()))
		})
	})

	When("the directory is empty", func() {
		It("tells the operator to init or join", func() {
			Expect(os.MkdirAll(dir, 0o700)).To(Succeed())
			_, err := pki.LoadCA(dir)
			Expect(err).To(MatchError(pki.ErrNotFound))
			Expect(errors.Is(err, fs.ErrNotExist)).To(BeTrue())
			Expect(err).To(MatchError("pki: " + filepath.Join(dir, "ca.crt") +
				" not found: run `warren cluster init` first, or join the cluster"))

			_, err = pki.LoadCAPool(dir)
			Expect(err).To(MatchError(pki.ErrNotFound))
		})
	})

	When("only ca.crt is present", func() {
		BeforeEach(func() {
			Expect(ca.Save(dir)).To(Succeed())
			Expect(os.Remove(filepath.Join(dir, "ca.key"))).To(Succeed())
		})

		It("serves a pool but not a CA", func() {
			_, err := pki.LoadCAPool(dir)
			Expect(err).NotTo(HaveOccurred())
			_, err = pki.LoadCA(dir)
			Expect(err).To(MatchError(pki.ErrNotFound))
			Expect(err).To(MatchError(ContainSubstring("ca.key not found: only managers hold the CA key")))
		})
	})

	When("ca.key belongs to another CA", func() {
		BeforeEach(func() {
			other, err := pki.NewCA("c1", t0)
			Expect(err).NotTo(HaveOccurred())
			otherDir := GinkgoT().TempDir()
			Expect(other.Save(otherDir)).To(Succeed())
			Expect(ca.Save(dir)).To(Succeed())
			key, err := os.ReadFile(filepath.Join(otherDir, "ca.key"))
			Expect(err).NotTo(HaveOccurred())
			Expect(os.WriteFile(filepath.Join(dir, "ca.key"), key, 0o600)).To(Succeed())
		})

		It("refuses the pair", func() {
			_, err := pki.LoadCA(dir)
			Expect(err).To(MatchError(pki.ErrMismatch))
			Expect(err).To(MatchError(ContainSubstring("restore both files from the same backup")))
		})
	})

	When("ca.crt is not PEM", func() {
		BeforeEach(func() {
			Expect(ca.Save(dir)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("garbage"), 0o644)).To(Succeed())
		})

		It("says the file is malformed", func() {
			_, err := pki.LoadCAPool(dir)
			Expect(err).To(MatchError(pki.ErrMalformed))
			Expect(err).To(MatchError(ContainSubstring("holds no CERTIFICATE block")))
		})
	})

	When("ca.crt holds a leaf", func() {
		BeforeEach(func() {
			leaf, err := ca.Issue(pki.Request{CommonName: "n", Role: pki.RoleWorker}, t0)
			Expect(err).NotTo(HaveOccurred())
			Expect(leaf.Save(dir, "ca-copy")).To(Succeed())
			Expect(os.Rename(filepath.Join(dir, "ca-copy.crt"), filepath.Join(dir, "ca.crt"))).To(Succeed())
		})

		It("refuses it as a CA", func() {
			_, err := pki.LoadCAPool(dir)
			Expect(err).To(MatchError(pki.ErrMalformed))
			Expect(err).To(MatchError(ContainSubstring("is not a CA certificate")))
		})
	})
})

var _ = Describe("Cert files", func() {
	var (
		dir  string
		ca   *pki.CA
		cert *pki.Cert
	)

	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		var err error
		ca, err = pki.NewCA("c1", t0)
		Expect(err).NotTo(HaveOccurred())
		cert, err = ca.Issue(pki.Request{CommonName: "node-1", Role: pki.RoleManager}, t0)
		Expect(err).NotTo(HaveOccurred())
	})

	It("round-trips through NAME.crt 0644 and NAME.key 0600", func() {
		Expect(cert.Save(dir, "node")).To(Succeed())
		Expect(fileMode(filepath.Join(dir, "node.crt"))).To(Equal(fs.FileMode(0o644)))
		Expect(fileMode(filepath.Join(dir, "node.key"))).To(Equal(fs.FileMode(0o600)))
		loaded, err := pki.LoadCert(dir, "node")
		Expect(err).NotTo(HaveOccurred())
		Expect(loaded.Leaf.Equal(cert.Leaf)).To(BeTrue())
		Expect(loaded.Key.Equal(cert.Key)).To(BeTrue())
		Expect(loaded.Role()).To(Equal(pki.RoleManager))
	})

	It("says which file is missing", func() {
		_, err := pki.LoadCert(dir, "node")
		Expect(err).To(MatchError(pki.ErrNotFound))
		Expect(err).To(MatchError(ContainSubstring(filepath.Join(dir, "node.crt") + " not found")))
	})

	It("refuses a key that belongs to another certificate", func() {
		other, err := ca.Issue(pki.Request{CommonName: "node-2", Role: pki.RoleManager}, t0)
		Expect(err).NotTo(HaveOccurred())
		Expect(cert.Save(dir, "node")).To(Succeed())
		Expect(other.Save(dir, "other")).To(Succeed())
		Expect(os.Rename(filepath.Join(dir, "other.key"), filepath.Join(dir, "node.key"))).To(Succeed())
		_, err = pki.LoadCert(dir, "node")
		Expect(err).To(MatchError(pki.ErrMismatch))
	})

	DescribeTable("refuses names that escape the directory or clobber the CA",
		func(name string) {
			Expect(cert.Save(dir, name)).To(MatchError(pki.ErrInvalidRequest))
			_, err := pki.LoadCert(dir, name)
			Expect(err).To(MatchError(pki.ErrInvalidRequest))
		},
		Entry("empty", ""),
		Entry("parent", "../node"),
		Entry("dot-dot", ".."),
		Entry("the CA", "ca"),
	)
})

var _ = Describe("PEM forms", func() {
	It("round-trip a CA and a certificate, and refuse mismatched or garbled input", func() {
		ca, err := pki.NewCA("c1", t0)
		Expect(err).NotTo(HaveOccurred())
		cert, err := ca.Issue(pki.Request{CommonName: "n1", Role: pki.RoleWorker}, t0)
		Expect(err).NotTo(HaveOccurred())

		certPEM, keyPEM, err := cert.PEM()
		Expect(err).NotTo(HaveOccurred())
		back, err := pki.ParseCert(certPEM, keyPEM)
		Expect(err).NotTo(HaveOccurred())
		Expect(back.Leaf.Equal(cert.Leaf)).To(BeTrue())
		Expect(back.Role()).To(Equal(pki.RoleWorker))

		caKey, err := ca.KeyPEM()
		Expect(err).NotTo(HaveOccurred())
		ca2, err := pki.ParseCA(ca.CertPEM(), caKey)
		Expect(err).NotTo(HaveOccurred())
		Expect(ca2.Digest()).To(Equal(ca.Digest()))
		_, err = ca2.Issue(pki.Request{CommonName: "n2", Role: pki.RoleWorker}, t0)
		Expect(err).NotTo(HaveOccurred())

		public, err := pki.ParseCA(ca.CertPEM(), nil)
		Expect(err).NotTo(HaveOccurred())
		_, err = public.KeyPEM()
		Expect(err).To(MatchError(pki.ErrInvalidRequest))

		other, err := ca.Issue(pki.Request{CommonName: "n3", Role: pki.RoleWorker}, t0)
		Expect(err).NotTo(HaveOccurred())
		_, otherKey, err := other.PEM()
		Expect(err).NotTo(HaveOccurred())
		_, err = pki.ParseCert(certPEM, otherKey)
		Expect(err).To(MatchError(pki.ErrMismatch))
		_, err = pki.ParseCert([]byte("garbage"), keyPEM)
		Expect(err).To(MatchError(pki.ErrMalformed))
		_, err = pki.ParseCA(certPEM, nil)
		Expect(err).To(MatchError(ContainSubstring("is not a CA certificate")))
	})

	It("saves only the CA certificate for a worker", func() {
		ca, err := pki.NewCA("c1", t0)
		Expect(err).NotTo(HaveOccurred())
		dir := GinkgoT().TempDir()
		Expect(ca.SaveCert(dir)).To(Succeed())
		_, err = pki.LoadCAPool(dir)
		Expect(err).NotTo(HaveOccurred())
		_, err = pki.LoadCA(dir)
		Expect(err).To(MatchError(pki.ErrNotFound))
	})
})
