package raft_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	hraft "github.com/hashicorp/raft"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/pki"
	wraft "github.com/warren-orchestrator/warren/backends/raft"
)

// streamPeer is one end of the stream layer specs: a stream layer, the
// raft transport on it, and a count of the RPCs that reached raft.
type streamPeer struct {
	layer *wraft.StreamLayer
	trans *hraft.NetworkTransport
	rpcs  atomic.Int64
}

// newStreamPeer listens on loopback with cert, requiring managers on both
// sides, and grants every vote it is asked for until the spec ends.
func newStreamPeer(pool *pki.CA, cert *pki.Cert) *streamPeer {
	GinkgoHelper()
	role := pki.RequireRole(pki.RoleManager)
	layer, err := wraft.NewStreamLayer("127.0.0.1:0", nil,
		pki.ServerConfig(pool.Pool(), cert, role), pki.ClientConfig(pool.Pool(), cert, role))
	Expect(err).NotTo(HaveOccurred())
	p := &streamPeer{layer: layer, trans: hraft.NewNetworkTransport(layer, 3, 2*time.Second, io.Discard)}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case rpc := <-p.trans.Consumer():
				p.rpcs.Add(1)
				req, ok := rpc.Command.(*hraft.RequestVoteRequest)
				if !ok {
					rpc.Respond(nil, errors.New("unexpected RPC"))
					continue
				}
				rpc.Respond(&hraft.RequestVoteResponse{Term: req.Term, Granted: true}, nil)
			case <-done:
				return
			}
		}
	}()
	DeferCleanup(func() {
		close(done)
		Expect(p.trans.Close()).To(Succeed())
	})
	return p
}

// streamVote asks to's raft for its vote over from's transport.
func streamVote(from *hraft.NetworkTransport, to *streamPeer, term uint64) (*hraft.RequestVoteResponse, error) {
	var resp hraft.RequestVoteResponse
	req := &hraft.RequestVoteRequest{
		RPCHeader:    hraft.RPCHeader{ProtocolVersion: hraft.ProtocolVersionMax, ID: []byte("m1"), Addr: []byte(from.LocalAddr())},
		Term:         term,
		LastLogIndex: 7,
		LastLogTerm:  term - 1,
	}
	err := from.RequestVote("m2", to.trans.LocalAddr(), req, &resp)
	return &resp, err
}

var _ = Describe("StreamLayer", func() {
	var (
		ca, otherCA *pki.CA
		m1, m2      *streamPeer
		certs       map[string]*pki.Cert
	)

	BeforeEach(func() {
		now := time.Now()
		var err error
		ca, err = pki.NewCA("c1", now)
		Expect(err).NotTo(HaveOccurred())
		otherCA, err = pki.NewCA("c2", now)
		Expect(err).NotTo(HaveOccurred())
		certs = map[string]*pki.Cert{}
		for name, issuer := range map[string]struct {
			ca   *pki.CA
			role string
		}{
			"m1": {ca, pki.RoleManager}, "m2": {ca, pki.RoleManager},
			"w1": {ca, pki.RoleWorker}, "x1": {otherCA, pki.RoleManager},
		} {
			certs[name], err = issuer.ca.Issue(pki.Request{
				CommonName: name, Role: issuer.role, IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
			}, now)
			Expect(err).NotTo(HaveOccurred())
		}
		m1 = newStreamPeer(ca, certs["m1"])
		m2 = newStreamPeer(ca, certs["m2"])
	})

	It("carries a RequestVote between two managers over TLS and brings back the answer", func() {
		resp, err := streamVote(m1.trans, m2, 5)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Granted).To(BeTrue())
		Expect(resp.Term).To(Equal(uint64(5)))
		Expect(m2.rpcs.Load()).To(Equal(int64(1)))

		resp, err = streamVote(m2.trans, m1, 6)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Term).To(Equal(uint64(6)))
	})

	It("hands raft TLS 1.3 connections with the peer's certificate verified", func() {
		layer, err := wraft.NewStreamLayer("127.0.0.1:0", nil,
			pki.ServerConfig(ca.Pool(), certs["m2"]), pki.ClientConfig(ca.Pool(), certs["m2"]))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(layer.Close)
		dialed := make(chan net.Conn, 1)
		go func() {
			defer GinkgoRecover()
			conn, err := m1.layer.Dial(hraft.ServerAddress(layer.Addr().String()), 2*time.Second)
			Expect(err).NotTo(HaveOccurred())
			dialed <- conn
		}()
		conn, err := layer.Accept()
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(conn.Close)
		var client net.Conn
		Eventually(dialed).WithTimeout(5 * time.Second).Should(Receive(&client))
		DeferCleanup(client.Close)
		tc, ok := conn.(*tls.Conn)
		Expect(ok).To(BeTrue())
		cs := tc.ConnectionState()
		Expect(cs.HandshakeComplete).To(BeTrue())
		Expect(cs.Version).To(Equal(uint16(tls.VersionTLS13)))
		Expect(cs.PeerCertificates[0].Subject.CommonName).To(Equal("m1"))
	})

	// Each refused client must neither reach raft nor stop the listener.
	DescribeTable("refuses and keeps serving",
		func(attempt func(addr string) error) {
			Expect(attempt(m2.layer.Addr().String())).To(HaveOccurred())
			Expect(m2.rpcs.Load()).To(BeZero())

			resp, err := streamVote(m1.trans, m2, 3)
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.Granted).To(BeTrue())
			Expect(m2.rpcs.Load()).To(Equal(int64(1)))
		},
		Entry("a plain TCP client", func(addr string) error {
			conn, err := net.Dial("tcp", addr)
			Expect(err).NotTo(HaveOccurred())
			defer func() { _ = conn.Close() }()
			Expect(conn.SetDeadline(time.Now().Add(5 * time.Second))).To(Succeed())
			_, err = conn.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
			Expect(err).NotTo(HaveOccurred())
			_, err = io.ReadAll(conn)
			var nerr net.Error
			Expect(errors.As(err, &nerr) && nerr.Timeout()).To(BeFalse(), "the server should hang up, not leave the client waiting")
			if err == nil {
				// A clean EOF: the server hung up (after its TLS alert).
				err = io.EOF
			}
			return err
		}),
		Entry("a TLS client with a certificate from another CA", func(addr string) error {
			cfg := pki.ClientConfig(otherCA.Pool(), certs["x1"])
			_, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
			return err
		}),
		Entry("a TLS client that trusts the cluster but insists on another CA's certificate", func(addr string) error {
			cfg := pki.ClientConfig(ca.Pool(), certs["x1"])
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				c := certs["x1"].TLSCertificate()
				return &c, nil
			}
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
			if err != nil {
				return err
			}
			defer func() { _ = conn.Close() }()
			// TLS 1.3 clients finish first; the refusal arrives on read.
			_, err = conn.Read(make([]byte, 1))
			return err
		}),
		Entry("a worker where managers are required", func(addr string) error {
			worker, err := wraft.NewStreamLayer("127.0.0.1:0", nil,
				pki.ServerConfig(ca.Pool(), certs["w1"]), pki.ClientConfig(ca.Pool(), certs["w1"]))
			Expect(err).NotTo(HaveOccurred())
			trans := hraft.NewNetworkTransport(worker, 3, 2*time.Second, io.Discard)
			defer func() { _ = trans.Close() }()
			_, err = streamVote(trans, m2, 3)
			return err
		}),
	)

	When("a client connects and says nothing", func() {
		It("serves other managers meanwhile", func() {
			conn, err := net.Dial("tcp", m2.layer.Addr().String())
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(conn.Close)

			// The RPC's 2 s timeout is well inside the 10 s the silent
			// client may hold its handshake open.
			resp, err := streamVote(m1.trans, m2, 4)
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.Granted).To(BeTrue())
		})
	})

	When("the peer accepts TCP but never answers the handshake", func() {
		It("gives up dialling after the timeout", func() {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			Expect(err).NotTo(HaveOccurred())
			accepted := make(chan net.Conn, 8)
			go func() {
				defer close(accepted)
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- conn
				}
			}()
			DeferCleanup(func() {
				_ = ln.Close()
				for conn := range accepted {
					_ = conn.Close()
				}
			})
			errs := make(chan error, 1)
			go func() {
				_, err := m1.layer.Dial(hraft.ServerAddress(ln.Addr().String()), 200*time.Millisecond)
				errs <- err
			}()
			Eventually(errs).WithTimeout(5 * time.Second).Should(Receive(HaveOccurred()))
		})
	})

	When("closed", func() {
		It("makes a waiting Accept and later ones return net.ErrClosed", func() {
			layer, err := wraft.NewStreamLayer("127.0.0.1:0", nil,
				pki.ServerConfig(ca.Pool(), certs["m1"]), pki.ClientConfig(ca.Pool(), certs["m1"]))
			Expect(err).NotTo(HaveOccurred())
			errs := make(chan error, 1)
			go func() {
				_, err := layer.Accept()
				errs <- err
			}()
			Expect(layer.Close()).To(Succeed())
			Eventually(errs).WithTimeout(5 * time.Second).Should(Receive(MatchError(net.ErrClosed)))
			_, err = layer.Accept()
			Expect(err).To(MatchError(net.ErrClosed))
			Expect(layer.Close()).To(Succeed())
		})
	})

	Describe("Addr", func() {
		var (
			bind      string
			advertise net.Addr
			layer     *wraft.StreamLayer
			err       error
		)

		BeforeEach(func() {
			bind, advertise = "127.0.0.1:0", nil
		})

		JustBeforeEach(func() {
			layer, err = wraft.NewStreamLayer(bind, advertise,
				pki.ServerConfig(ca.Pool(), certs["m1"]), pki.ClientConfig(ca.Pool(), certs["m1"]))
			if err == nil {
				DeferCleanup(layer.Close)
			}
		})

		When("no advertise address is given", func() {
			It("is the listener's address", func() {
				Expect(err).NotTo(HaveOccurred())
				tcp, ok := layer.Addr().(*net.TCPAddr)
				Expect(ok).To(BeTrue())
				Expect(tcp.IP.Equal(net.IPv4(127, 0, 0, 1))).To(BeTrue())
				Expect(tcp.Port).NotTo(BeZero())
			})
		})

		When("an advertise address is given", func() {
			BeforeEach(func() { advertise = &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 4243} })

			It("is the advertise address", func() {
				Expect(err).NotTo(HaveOccurred())
				Expect(layer.Addr().String()).To(Equal("10.0.0.5:4243"))
			})
		})

		When("the advertise address has port 0", func() {
			BeforeEach(func() { advertise = &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5)} })

			It("takes the listener's port", func() {
				Expect(err).NotTo(HaveOccurred())
				Expect(layer.Addr().(*net.TCPAddr).Port).NotTo(BeZero())
			})
		})

		DescribeTable("refuses an address other managers cannot dial",
			func(b string, a net.Addr) {
				_, err := wraft.NewStreamLayer(b, a,
					pki.ServerConfig(ca.Pool(), certs["m1"]), pki.ClientConfig(ca.Pool(), certs["m1"]))
				Expect(err).To(MatchError(wraft.ErrUnroutableAdvertise))
				Expect(err).To(MatchError(ContainSubstring("pass --advertise-addr")))
			},
			Entry("0.0.0.0 advertised", "127.0.0.1:0", &net.TCPAddr{IP: net.IPv4zero, Port: 4243}),
			Entry(":: advertised", "127.0.0.1:0", &net.TCPAddr{IP: net.IPv6unspecified, Port: 4243}),
			Entry("bound to 0.0.0.0 with nothing advertised", "0.0.0.0:0", nil),
		)
	})
})
