package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Roles a certificate can be issued for. A peer reads the role from the
// certificate's subject OU, so it is as trustworthy as the CA's signature.
const (
	// RoleManager is a manager node: it runs raft and the API.
	RoleManager = "manager"
	// RoleWorker is a worker node: it runs tasks.
	RoleWorker = "worker"
	// RoleAdmin is a CLI user.
	RoleAdmin = "admin"
)

const (
	// CAValidFor is the CA's lifetime, long enough to outlive many rounds
	// of leaf renewal.
	CAValidFor = 10 * 365 * 24 * time.Hour
	// LeafValidFor is a node certificate's default lifetime, short so a
	// leaked node key stops working without revocation lists.
	LeafValidFor = 90 * 24 * time.Hour
	// clockSkew backdates NotBefore so a peer whose clock is a little behind
	// the issuer's accepts a certificate issued a moment ago.
	clockSkew = time.Hour
)

var (
	// ErrInvalidRequest is wrapped by Issue's error for a Request it refuses.
	ErrInvalidRequest = errors.New("pki: invalid certificate request")
	// ErrNotFound is wrapped by the error for a PEM file that does not exist.
	ErrNotFound = errors.New("pki: file not found")
	// ErrMismatch is wrapped by the error for a key that does not belong to
	// its certificate.
	ErrMismatch = errors.New("pki: key does not match certificate")
	// ErrMalformed is wrapped by the error for a file that holds no usable
	// certificate or key.
	ErrMalformed = errors.New("pki: malformed PEM file")
	// ErrPeerRefused is wrapped by the TLS handshake error for a peer whose
	// role is not accepted, or a server the cluster CA did not sign. (A
	// client the CA did not sign is refused by crypto/tls itself, with its
	// own error.)
	ErrPeerRefused = errors.New("pki: peer refused")
)

// CA is the cluster's certificate authority: its self-signed root
// certificate and the key that signs node certificates.
type CA struct {
	// Cert is the root certificate every peer trusts.
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// Request describes the certificate Issue makes for one node or user.
type Request struct {
	// CommonName is the node ID (or user name for admin certificates).
	CommonName string
	// Role is RoleManager, RoleWorker or RoleAdmin.
	Role string
	// IPs are the addresses peers dial the node at.
	IPs []net.IP
	// DNSNames are optional host names of the node.
	DNSNames []string
	// ValidFor is how long the certificate is valid; zero means LeafValidFor.
	ValidFor time.Duration
}

// NewCA makes a new cluster CA: an ECDSA P-256 self-signed root named
// after the cluster, valid CAValidFor from now.
func NewCA(clusterID string, now time.Time) (*CA, error) {
	if clusterID == "" {
		return nil, fmt.Errorf("%w: the cluster ID is empty", ErrInvalidRequest)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "warren-ca " + clusterID},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(CAValidFor),
		KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		IsCA:         true,
		// The root signs leaves directly; no intermediate may be minted
		// with it, so a leaked node key can never act as a CA.
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, key: key}, nil
}

// Issue signs a fresh ECDSA P-256 key for req, usable as both TLS server
// and client, since every node both dials and accepts.
func (ca *CA) Issue(req Request, now time.Time) (*Cert, error) {
	if ca.key == nil {
		return nil, fmt.Errorf("%w: this CA has no private key: load it with LoadCA on a manager", ErrInvalidRequest)
	}
	if req.CommonName == "" {
		return nil, fmt.Errorf("%w: the common name (node ID) is empty", ErrInvalidRequest)
	}
	if !knownRole(req.Role) {
		return nil, fmt.Errorf("%w: role %q for %s: use %q, %q or %q",
			ErrInvalidRequest, req.Role, req.CommonName, RoleManager, RoleWorker, RoleAdmin)
	}
	validFor := req.ValidFor
	if validFor == 0 {
		validFor = LeafValidFor
	}
	if validFor < 0 {
		return nil, fmt.Errorf("%w: validity %s for %s is negative", ErrInvalidRequest, validFor, req.CommonName)
	}
	notAfter := now.Add(validFor)
	// A leaf cannot be trusted past its CA, so promising more would only
	// make NeedsRenewal fire too late.
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key for %s: %w", req.CommonName, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         req.CommonName,
			OrganizationalUnit: []string{req.Role},
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IPAddresses:           append([]net.IP(nil), req.IPs...),
		DNSNames:              append([]string(nil), req.DNSNames...),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign certificate for %s: %w", req.CommonName, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse certificate for %s: %w", req.CommonName, err)
	}
	return &Cert{Leaf: leaf, Key: key}, nil
}

// Pool returns a pool holding only this CA, for ServerConfig and
// ClientConfig.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// Digest returns "sha256:<hex>" of the CA certificate, which join tokens
// carry so a joining node can pin the CA it is handed.
func (ca *CA) Digest() string { return Digest(ca.Cert) }

// Digest returns "sha256:<hex>" of cert's DER encoding; a joining node
// compares it with the digest in its join token.
func Digest(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// newSerial returns a random positive 128-bit serial number, as RFC 5280
// asks for serials unpredictable to whoever requests the certificate.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		serial, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("pki: generate serial number: %w", err)
		}
		if serial.Sign() > 0 {
			return serial, nil
		}
	}
}

func knownRole(role string) bool {
	return role == RoleManager || role == RoleWorker || role == RoleAdmin
}
