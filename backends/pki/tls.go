package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Option adjusts the tls.Config that ServerConfig or ClientConfig builds.
type Option func(*tlsOptions)

type tlsOptions struct {
	roles    []string
	now      func() time.Time
	optional bool              // a client may present no certificate
	chain    *x509.Certificate // sent after the leaf
	current  func() *Cert      // the certificate to present, read per handshake
}

// Current presents the certificate current returns at each handshake
// instead of a fixed one, so a renewed certificate takes effect on the
// next connection without rebuilding the config. The cert argument of
// ServerConfig and ClientConfig is then ignored.
func Current(current func() *Cert) Option {
	return func(o *tlsOptions) { o.current = current }
}

// AllowNoClientCert lets a client connect without a certificate (one it
// does present is still verified). For the API, where a joining node has
// only its token, and each endpoint checks the caller's role itself.
func AllowNoClientCert() Option {
	return func(o *tlsOptions) { o.optional = true }
}

// PresentCA sends the CA certificate after the leaf, so that a joining
// node, which knows only the CA's digest, can verify the server.
func PresentCA(ca *x509.Certificate) Option {
	return func(o *tlsOptions) { o.chain = ca }
}

// RequireRole accepts only peers whose certificate was issued for one of
// roles, e.g. RequireRole(RoleManager) for raft traffic between managers.
func RequireRole(roles ...string) Option {
	return func(o *tlsOptions) { o.roles = append(o.roles, roles...) }
}

// WithClock checks certificate validity against now instead of the wall
// clock, so tests can present expired or not-yet-valid certificates.
func WithClock(now func() time.Time) Option {
	return func(o *tlsOptions) { o.now = now }
}

// ServerConfig returns the config for accepting connections: TLS 1.3 only,
// presenting cert, and requiring a client certificate that pool's CA signed
// (and that carries a required role, if RequireRole is given).
func ServerConfig(pool *x509.CertPool, cert *Cert, opts ...Option) *tls.Config {
	o := applyOptions(opts)
	cfg := baseConfig(pool, cert, o)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	if o.optional {
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	// crypto/tls has already verified the client's chain against ClientCAs
	// for client authentication; only the role is left to check.
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			if o.optional {
				return nil
			}
			// Only reachable if a caller loosens ClientAuth.
			return fmt.Errorf("%w: the client presented no certificate", ErrPeerRefused)
		}
		return checkRole(cs.PeerCertificates[0], o.roles)
	}
	return cfg
}

// ClientConfig returns the config for dialling a peer: TLS 1.3 only,
// presenting cert (none when cert is nil), and accepting only a server
// certificate that pool's CA signed for server use (and that carries a
// required role, if RequireRole is given).
//
// The server's host name is deliberately not matched: peers are dialled by
// IP, which may be a NAT or overlay address absent from the certificate, and
// the CA is private to the cluster, so its signature (and the role it
// vouches for) already says the peer is a member. crypto/tls can only skip
// host name matching together with chain verification, so the config sets
// InsecureSkipVerify and verifies the chain itself in VerifyConnection.
func ClientConfig(pool *x509.CertPool, cert *Cert, opts ...Option) *tls.Config {
	o := applyOptions(opts)
	cfg := baseConfig(pool, cert, o)
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("%w: the server presented no certificate", ErrPeerRefused)
		}
		leaf := cs.PeerCertificates[0]
		intermediates := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			intermediates.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots:         pool,
			Intermediates: intermediates,
			CurrentTime:   o.now(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			return fmt.Errorf("%w: server %q is not vouched for by this cluster's CA (%w): check that the address belongs to this cluster",
				ErrPeerRefused, leaf.Subject.CommonName, err)
		}
		return checkRole(leaf, o.roles)
	}
	return cfg
}

func applyOptions(opts []Option) *tlsOptions {
	o := &tlsOptions{now: time.Now}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

func baseConfig(pool *x509.CertPool, cert *Cert, o *tlsOptions) *tls.Config {
	cfg := &tls.Config{
		// Every party is Warren itself, so there is no old client to keep
		// working, and 1.3 drops the legacy cipher suites and renegotiation.
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool,
		ClientCAs:  pool,
		Time:       o.now,
	}
	present := func(cert *Cert) *tls.Certificate {
		c := cert.TLSCertificate()
		if o.chain != nil {
			c.Certificate = append(c.Certificate, o.chain.Raw)
		}
		return &c
	}
	switch {
	case o.current != nil:
		cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return present(o.current()), nil }
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return present(o.current()), nil }
	case cert != nil:
		cfg.Certificates = []tls.Certificate{*present(cert)}
	}
	return cfg
}

func checkRole(peer *x509.Certificate, roles []string) error {
	if len(roles) == 0 {
		return nil
	}
	role := Role(peer)
	if slices.Contains(roles, role) {
		return nil
	}
	has := "no role"
	if role != "" {
		has = fmt.Sprintf("role %q", role)
	}
	return fmt.Errorf("%w: %q has %s but this endpoint accepts only %s: connect with a certificate of that role",
		ErrPeerRefused, peer.Subject.CommonName, has, strings.Join(roles, " or "))
}

// PinnedClientConfig returns the config a joining node dials a manager
// with: it has no certificate and no CA yet, only the CA digest from its
// join token. The server must present the CA (see PresentCA) whose digest
// is digest, and a leaf that CA signed.
func PinnedClientConfig(digest string, opts ...Option) *tls.Config {
	o := applyOptions(opts)
	cfg := baseConfig(nil, nil, o)
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("%w: the server presented no certificate", ErrPeerRefused)
		}
		var ca *x509.Certificate
		for _, c := range cs.PeerCertificates[1:] {
			if c.IsCA && Digest(c) == digest {
				ca = c
			}
		}
		if ca == nil {
			return fmt.Errorf("%w: the server does not present the CA %s named by the join token: check the token and that --manager points at this cluster",
				ErrPeerRefused, digest)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
			Roots:       pool,
			CurrentTime: o.now(),
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			return fmt.Errorf("%w: the server's certificate is not signed by the CA %s (%w)", ErrPeerRefused, digest, err)
		}
		return checkRole(cs.PeerCertificates[0], o.roles)
	}
	return cfg
}
