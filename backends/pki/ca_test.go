package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"net"
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/pki"
)

// t0 is the fixed "now" of every spec: the package takes time as an
// argument, so nothing here depends on the wall clock.
var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

var _ = Describe("CA", func() {
	var ca *pki.CA

	BeforeEach(func() {
		var err error
		ca, err = pki.NewCA("c1", t0)
		Expect(err).NotTo(HaveOccurred())
	})

	It("is a self-signed ECDSA P-256 root named after the cluster", func() {
		Expect(ca.Cert.Subject.CommonName).To(Equal("warren-ca c1"))
		Expect(ca.Cert.IsCA).To(BeTrue())
		Expect(ca.Cert.KeyUsage).To(Equal(x509.KeyUsageCertSign | x509.KeyUsageCRLSign))
		Expect(ca.Cert.CheckSignatureFrom(ca.Cert)).To(Succeed())
		pub, ok := ca.Cert.PublicKey.(*ecdsa.PublicKey)
		Expect(ok).To(BeTrue())
		Expect(pub.Curve).To(Equal(elliptic.P256()))
	})

	It("is valid from an hour before now for ten years", func() {
		Expect(ca.Cert.NotBefore).To(BeTemporally("==", t0.Add(-time.Hour)))
		Expect(ca.Cert.NotAfter).To(BeTemporally("==", t0.Add(10*365*24*time.Hour)))
	})

	It("has a random positive serial of at most 128 bits", func() {
		other, err := pki.NewCA("c1", t0)
		Expect(err).NotTo(HaveOccurred())
		Expect(ca.Cert.SerialNumber.Sign()).To(Equal(1))
		Expect(ca.Cert.SerialNumber.BitLen()).To(BeNumerically("<=", 128))
		Expect(ca.Cert.SerialNumber).NotTo(Equal(other.Cert.SerialNumber))
	})

	It("refuses an empty cluster ID", func() {
		_, err := pki.NewCA("", t0)
		Expect(err).To(MatchError(pki.ErrInvalidRequest))
	})

	Describe("Digest", func() {
		It("is sha256: and the hex of the certificate, stable across calls", func() {
			Expect(ca.Digest()).To(MatchRegexp(`^sha256:[0-9a-f]{64}$`))
			Expect(ca.Digest()).To(Equal(ca.Digest()))
			Expect(pki.Digest(ca.Cert)).To(Equal(ca.Digest()))
		})

		It("differs for another CA of the same cluster", func() {
			other, err := pki.NewCA("c1", t0)
			Expect(err).NotTo(HaveOccurred())
			Expect(other.Digest()).NotTo(Equal(ca.Digest()))
		})
	})
})

var _ = Describe("Issue", func() {
	var (
		ca   *pki.CA
		req  pki.Request
		cert *pki.Cert
		err  error
	)

	BeforeEach(func() {
		ca, err = pki.NewCA("c1", t0)
		Expect(err).NotTo(HaveOccurred())
		req = pki.Request{
			CommonName: "node-1",
			Role:       pki.RoleManager,
			IPs:        []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("fd00::1")},
			DNSNames:   []string{"node-1.example"},
		}
	})

	JustBeforeEach(func() {
		cert, err = ca.Issue(req, t0)
	})

	When("the request is valid", func() {
		It("makes a leaf whose chain verifies for both server and client use", func() {
			Expect(err).NotTo(HaveOccurred())
			for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				_, verr := cert.Leaf.Verify(x509.VerifyOptions{
					Roots:       ca.Pool(),
					CurrentTime: t0,
					KeyUsages:   []x509.ExtKeyUsage{usage},
				})
				Expect(verr).NotTo(HaveOccurred())
			}
			Expect(cert.Leaf.IsCA).To(BeFalse())
		})

		It("carries the IP and DNS SANs", func() {
			Expect(cert.Leaf.IPAddresses).To(HaveLen(2))
			Expect(cert.Leaf.IPAddresses[0].Equal(net.ParseIP("10.0.0.1"))).To(BeTrue())
			Expect(cert.Leaf.IPAddresses[1].Equal(net.ParseIP("fd00::1"))).To(BeTrue())
			Expect(cert.Leaf.DNSNames).To(ConsistOf("node-1.example"))
			Expect(cert.Leaf.VerifyHostname("10.0.0.1")).To(Succeed())
		})

		It("names the node and its role", func() {
			Expect(cert.Leaf.Subject.CommonName).To(Equal("node-1"))
			Expect(cert.Leaf.Subject.OrganizationalUnit).To(ConsistOf(pki.RoleManager))
			Expect(pki.Role(cert.Leaf)).To(Equal(pki.RoleManager))
			Expect(cert.Role()).To(Equal(pki.RoleManager))
		})

		It("is valid from an hour before now for 90 days", func() {
			Expect(cert.Leaf.NotBefore).To(BeTemporally("==", t0.Add(-time.Hour)))
			Expect(cert.Leaf.NotAfter).To(BeTemporally("==", t0.Add(90*24*time.Hour)))
		})

		It("uses a fresh P-256 key for every certificate", func() {
			again, err := ca.Issue(req, t0)
			Expect(err).NotTo(HaveOccurred())
			Expect(cert.Key.Curve).To(Equal(elliptic.P256()))
			Expect(again.Key.Equal(cert.Key)).To(BeFalse())
			Expect(again.Leaf.SerialNumber).NotTo(Equal(cert.Leaf.SerialNumber))
		})
	})

	When("ValidFor is set", func() {
		BeforeEach(func() { req.ValidFor = 24 * time.Hour })

		It("is valid for that long", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(cert.Leaf.NotAfter).To(BeTemporally("==", t0.Add(24*time.Hour)))
		})
	})

	When("ValidFor reaches past the CA", func() {
		BeforeEach(func() { req.ValidFor = 20 * 365 * 24 * time.Hour })

		It("ends with the CA", func() {
			Expect(err).NotTo(HaveOccurred())
			Expect(cert.Leaf.NotAfter).To(BeTemporally("==", ca.Cert.NotAfter))
		})
	})

	When("the CA has only its certificate", func() {
		BeforeEach(func() { ca = &pki.CA{Cert: ca.Cert} })

		It("refuses to issue and says where the key is", func() {
			Expect(err).To(MatchError(pki.ErrInvalidRequest))
			Expect(err).To(MatchError(ContainSubstring("load it with LoadCA on a manager")))
		})
	})

	DescribeTable("refuses a bad request",
		func(mutate func(*pki.Request), msg string) {
			mutate(&req)
			_, err := ca.Issue(req, t0)
			Expect(err).To(MatchError(pki.ErrInvalidRequest))
			Expect(err).To(MatchError(MatchRegexp(regexp.QuoteMeta(msg))))
		},
		Entry("unknown role", func(r *pki.Request) { r.Role = "root" }, `role "root" for node-1: use "manager", "worker" or "admin"`),
		Entry("no role", func(r *pki.Request) { r.Role = "" }, `role "" for node-1`),
		Entry("no common name", func(r *pki.Request) { r.CommonName = "" }, "common name (node ID) is empty"),
		Entry("negative validity", func(r *pki.Request) { r.ValidFor = -time.Hour }, "is negative"),
	)
})

var _ = Describe("Cert", func() {
	var cert *pki.Cert

	BeforeEach(func() {
		ca, err := pki.NewCA("c1", t0)
		Expect(err).NotTo(HaveOccurred())
		cert, err = ca.Issue(pki.Request{CommonName: "node-1", Role: pki.RoleWorker}, t0)
		Expect(err).NotTo(HaveOccurred())
	})

	// The certificate spans 90 days and an hour, so renewal is due once
	// fewer than 30 days and 20 minutes are left: from day 59 and 23h40m.
	DescribeTable("NeedsRenewal",
		func(after time.Duration, want bool) {
			Expect(cert.NeedsRenewal(t0.Add(after))).To(Equal(want))
		},
		Entry("when just issued", time.Duration(0), false),
		Entry("with more than a third left", 59*24*time.Hour+23*time.Hour, false),
		Entry("with less than a third left", 60*24*time.Hour, true),
		Entry("once expired", 91*24*time.Hour, true),
	)

	It("has no role when its OU names none", func() {
		leaf := *cert.Leaf
		leaf.Subject.OrganizationalUnit = []string{"ops"}
		Expect(pki.Role(&leaf)).To(BeEmpty())
		Expect(pki.Role(nil)).To(BeEmpty())
	})
})
