package pki

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"slices"
	"time"
)

// Cert is a node's (or user's) certificate and private key.
type Cert struct {
	// Leaf is the certificate the CA signed.
	Leaf *x509.Certificate
	// Key is the private key of Leaf.
	Key *ecdsa.PrivateKey
}

// NeedsRenewal reports whether less than a third of the certificate's
// validity is left at now, which leaves two thirds of a period's slack for
// a renewal that fails and has to be retried.
func (c *Cert) NeedsRenewal(now time.Time) bool {
	total := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
	left := c.Leaf.NotAfter.Sub(now)
	return left*3 < total
}

// Role returns the role the certificate was issued for.
func (c *Cert) Role() string { return Role(c.Leaf) }

// TLSCertificate returns the certificate and key in the form crypto/tls
// presents.
func (c *Cert) TLSCertificate() tls.Certificate {
	return tls.Certificate{
		Certificate: [][]byte{c.Leaf.Raw},
		PrivateKey:  c.Key,
		Leaf:        c.Leaf,
	}
}

// Role returns the role (RoleManager, RoleWorker or RoleAdmin) that cert
// was issued for, or "" when it carries none. Only trust it for a cert
// whose chain to the cluster CA has been verified.
func Role(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	if i := slices.IndexFunc(cert.Subject.OrganizationalUnit, knownRole); i >= 0 {
		return cert.Subject.OrganizationalUnit[i]
	}
	return ""
}
