package pki_test

import (
	"crypto/tls"
	"io"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/pki"
)

// handshakeResult is what each side of one connection saw.
type handshakeResult struct {
	client, server error
	version        uint16
	clientSawCN    string
}

// handshake runs a TLS handshake between the two configs over net.Pipe.
// In TLS 1.3 the client finishes before the server has checked the
// client's certificate, so the client reads one byte the server writes
// after its own handshake: a refusal by the server shows up there.
func handshake(client, server *tls.Config) handshakeResult {
	GinkgoHelper()
	c, s := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	Expect(c.SetDeadline(deadline)).To(Succeed())
	Expect(s.SetDeadline(deadline)).To(Succeed())

	serverErr := make(chan error, 1)
	go func() {
		defer GinkgoRecover()
		defer func() { _ = s.Close() }()
		tc := tls.Server(s, server)
		if err := tc.Handshake(); err != nil {
			serverErr <- err
			return
		}
		_, err := tc.Write([]byte{1})
		serverErr <- err
	}()

	var res handshakeResult
	tc := tls.Client(c, client)
	res.client = tc.Handshake()
	if res.client == nil {
		cs := tc.ConnectionState()
		res.version = cs.Version
		res.clientSawCN = cs.PeerCertificates[0].Subject.CommonName
		_, res.client = io.ReadFull(tc, make([]byte, 1))
	}
	_ = c.Close()
	res.server = <-serverErr
	return res
}

var _ = Describe("TLS configs", func() {
	var (
		ca, otherCA                       *pki.CA
		manager1, manager2, worker, alien *pki.Cert
		clock                             pki.Option
	)

	issue := func(ca *pki.CA, cn, role string) *pki.Cert {
		GinkgoHelper()
		cert, err := ca.Issue(pki.Request{CommonName: cn, Role: role, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}, t0)
		Expect(err).NotTo(HaveOccurred())
		return cert
	}

	BeforeEach(func() {
		var err error
		ca, err = pki.NewCA("c1", t0)
		Expect(err).NotTo(HaveOccurred())
		otherCA, err = pki.NewCA("c2", t0)
		Expect(err).NotTo(HaveOccurred())
		manager1 = issue(ca, "m1", pki.RoleManager)
		manager2 = issue(ca, "m2", pki.RoleManager)
		worker = issue(ca, "w1", pki.RoleWorker)
		alien = issue(otherCA, "x1", pki.RoleManager)
		clock = pki.WithClock(func() time.Time { return t0.Add(time.Minute) })
	})

	It("allow TLS 1.3 only and require a client certificate", func() {
		server := pki.ServerConfig(ca.Pool(), manager1)
		client := pki.ClientConfig(ca.Pool(), manager2)
		Expect(server.MinVersion).To(Equal(uint16(tls.VersionTLS13)))
		Expect(client.MinVersion).To(Equal(uint16(tls.VersionTLS13)))
		Expect(server.ClientAuth).To(Equal(tls.RequireAndVerifyClientCert))
	})

	When("both peers hold certificates of the same CA", func() {
		It("completes a TLS 1.3 handshake", func() {
			res := handshake(
				pki.ClientConfig(ca.Pool(), manager2, clock),
				pki.ServerConfig(ca.Pool(), manager1, clock))
			Expect(res.client).NotTo(HaveOccurred())
			Expect(res.server).NotTo(HaveOccurred())
			Expect(res.version).To(Equal(uint16(tls.VersionTLS13)))
			Expect(res.clientSawCN).To(Equal("m1"))
		})
	})

	// The side that refuses names the reason; the other sees only the alert.
	DescribeTable("refuses",
		func(build func() (client, server *tls.Config), clientErr, serverErr string) {
			client, server := build()
			res := handshake(client, server)
			Expect(res.client).To(MatchError(ContainSubstring(clientErr)))
			Expect(res.server).To(MatchError(ContainSubstring(serverErr)))
		},
		Entry("a client without a certificate", func() (*tls.Config, *tls.Config) {
			return pki.ClientConfig(ca.Pool(), nil, clock), pki.ServerConfig(ca.Pool(), manager1, clock)
		}, "certificate required", "client didn't provide a certificate"),
		// crypto/tls only offers a certificate the server's CA list names.
		Entry("a client whose only certificate is from another CA", func() (*tls.Config, *tls.Config) {
			return pki.ClientConfig(ca.Pool(), alien, clock), pki.ServerConfig(ca.Pool(), manager1, clock)
		}, "certificate required", "client didn't provide a certificate"),
		Entry("a client that insists on a certificate from another CA", func() (*tls.Config, *tls.Config) {
			client := pki.ClientConfig(ca.Pool(), alien, clock)
			client.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				c := alien.TLSCertificate()
				return &c, nil
			}
			return client, pki.ServerConfig(ca.Pool(), manager1, clock)
		}, "unknown certificate authority", "certificate signed by unknown authority"),
		Entry("a server certificate from another CA", func() (*tls.Config, *tls.Config) {
			return pki.ClientConfig(ca.Pool(), manager2, clock), pki.ServerConfig(ca.Pool(), alien, clock)
		}, `pki: peer refused: server "x1" is not vouched for by this cluster's CA`, "bad certificate"),
		Entry("a worker client where managers are required", func() (*tls.Config, *tls.Config) {
			return pki.ClientConfig(ca.Pool(), worker, clock),
				pki.ServerConfig(ca.Pool(), manager1, clock, pki.RequireRole(pki.RoleManager))
		}, "bad certificate", `pki: peer refused: "w1" has role "worker" but this endpoint accepts only manager`),
		Entry("a worker server where managers are required", func() (*tls.Config, *tls.Config) {
			return pki.ClientConfig(ca.Pool(), manager2, clock, pki.RequireRole(pki.RoleManager)),
				pki.ServerConfig(ca.Pool(), worker, clock)
		}, `pki: peer refused: "w1" has role "worker" but this endpoint accepts only manager`, "bad certificate"),
		Entry("an expired server certificate", func() (*tls.Config, *tls.Config) {
			later := pki.WithClock(func() time.Time { return t0.Add(91 * 24 * time.Hour) })
			return pki.ClientConfig(ca.Pool(), manager2, later), pki.ServerConfig(ca.Pool(), manager1, clock)
		}, "certificate has expired", "bad certificate"),
		Entry("an expired client certificate", func() (*tls.Config, *tls.Config) {
			later := pki.WithClock(func() time.Time { return t0.Add(91 * 24 * time.Hour) })
			return pki.ClientConfig(ca.Pool(), manager2, clock), pki.ServerConfig(ca.Pool(), manager1, later)
		}, "expired certificate", "certificate has expired"),
		Entry("a client limited to TLS 1.2", func() (*tls.Config, *tls.Config) {
			client := pki.ClientConfig(ca.Pool(), manager2, clock)
			client.MinVersion, client.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
			return client, pki.ServerConfig(ca.Pool(), manager1, clock)
		}, "protocol version not supported", "unsupported versions"),
	)

	When("the required role is met", func() {
		It("accepts the peer and says why others are refused", func() {
			res := handshake(
				pki.ClientConfig(ca.Pool(), manager2, clock, pki.RequireRole(pki.RoleManager)),
				pki.ServerConfig(ca.Pool(), manager1, clock, pki.RequireRole(pki.RoleManager, pki.RoleAdmin)))
			Expect(res.client).NotTo(HaveOccurred())
			Expect(res.server).NotTo(HaveOccurred())

			res = handshake(
				pki.ClientConfig(ca.Pool(), worker, clock),
				pki.ServerConfig(ca.Pool(), manager1, clock, pki.RequireRole(pki.RoleManager)))
			Expect(res.server).To(MatchError(pki.ErrPeerRefused))
			Expect(res.server).To(MatchError(ContainSubstring(`"w1" has role "worker" but this endpoint accepts only manager`)))
		})
	})

	When("a joining node knows only the CA digest", func() {
		It("trusts a server that presents that CA, and no other", func() {
			server := pki.ServerConfig(ca.Pool(), manager1, clock, pki.AllowNoClientCert(), pki.PresentCA(ca.Cert))
			res := handshake(pki.PinnedClientConfig(ca.Digest(), clock), server)
			Expect(res.client).NotTo(HaveOccurred())
			Expect(res.server).NotTo(HaveOccurred())
			Expect(res.clientSawCN).To(Equal("m1"))

			res = handshake(pki.PinnedClientConfig(otherCA.Digest(), clock), server)
			Expect(res.client).To(MatchError(pki.ErrPeerRefused))
			Expect(res.client).To(MatchError(ContainSubstring("does not present the CA " + otherCA.Digest())))

			// The right CA presented beside a leaf it did not sign.
			forged := pki.ServerConfig(ca.Pool(), alien, clock, pki.AllowNoClientCert(), pki.PresentCA(ca.Cert))
			res = handshake(pki.PinnedClientConfig(ca.Digest(), clock), forged)
			Expect(res.client).To(MatchError(ContainSubstring("is not signed by the CA")))
		})

		It("lets a client without a certificate in only when allowed, and still checks one given", func() {
			server := pki.ServerConfig(ca.Pool(), manager1, clock, pki.AllowNoClientCert())
			Expect(server.ClientAuth).To(Equal(tls.VerifyClientCertIfGiven))
			res := handshake(pki.ClientConfig(ca.Pool(), nil, clock), server)
			Expect(res.client).NotTo(HaveOccurred())
			Expect(res.server).NotTo(HaveOccurred())

			insist := pki.ClientConfig(ca.Pool(), alien, clock)
			insist.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				c := alien.TLSCertificate()
				return &c, nil
			}
			res = handshake(insist, server)
			Expect(res.server).To(MatchError(ContainSubstring("certificate signed by unknown authority")))
		})
	})

	When("the certificate is read per handshake", func() {
		It("presents whichever certificate is current on each connection", func() {
			cur := manager1
			server := pki.ServerConfig(ca.Pool(), nil, clock, pki.Current(func() *pki.Cert { return cur }))
			res := handshake(pki.ClientConfig(ca.Pool(), manager2, clock), server)
			Expect(res.client).NotTo(HaveOccurred())
			Expect(res.clientSawCN).To(Equal("m1"))
			cur = issue(ca, "m1-renewed", pki.RoleManager)
			res = handshake(pki.ClientConfig(ca.Pool(), manager2, clock), server)
			Expect(res.client).NotTo(HaveOccurred())
			Expect(res.clientSawCN).To(Equal("m1-renewed"))

			mine := worker
			client := pki.ClientConfig(ca.Pool(), nil, clock, pki.Current(func() *pki.Cert { return mine }))
			res = handshake(client, pki.ServerConfig(ca.Pool(), manager1, clock, pki.RequireRole(pki.RoleManager)))
			Expect(res.server).To(MatchError(ContainSubstring(`"w1" has role "worker"`)))
			mine = manager2
			res = handshake(client, pki.ServerConfig(ca.Pool(), manager1, clock, pki.RequireRole(pki.RoleManager)))
			Expect(res.server).NotTo(HaveOccurred())
		})
	})
})
