package pki

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path/filepath"
)

// PEM forms travel in API messages: a joining node receives its
// certificate and key, and a joining manager the CA, as PEM bytes.

// PEM returns the certificate and key as PEM blocks, as Save writes them.
func (c *Cert) PEM() (cert, key []byte, err error) {
	key, err = keyPEM(c.Key)
	if err != nil {
		return nil, nil, err
	}
	return certPEM(c.Leaf), key, nil
}

// CertPEM returns the CA certificate as a PEM block.
func (ca *CA) CertPEM() []byte { return certPEM(ca.Cert) }

// KeyPEM returns the CA key as a PEM block; an error for a CA without one.
func (ca *CA) KeyPEM() ([]byte, error) {
	if ca.key == nil {
		return nil, fmt.Errorf("%w: this CA has no private key: load it with LoadCA on a manager", ErrInvalidRequest)
	}
	return keyPEM(ca.key)
}

// ParseCert reads a certificate and its key from PEM, checking that they
// belong together.
func ParseCert(certData, keyData []byte) (*Cert, error) {
	leaf, err := parseCertPEM(certData, "certificate")
	if err != nil {
		return nil, err
	}
	key, err := parseKeyPEM(keyData, "key")
	if err != nil {
		return nil, err
	}
	if err := checkPair(leaf, key, "the key", "the certificate"); err != nil {
		return nil, err
	}
	return &Cert{Leaf: leaf, Key: key}, nil
}

// ParseCA reads a CA certificate, and its key when keyData is not empty.
func ParseCA(certData, keyData []byte) (*CA, error) {
	cert, err := parseCertPEM(certData, "CA certificate")
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%w: %q is not a CA certificate", ErrMalformed, cert.Subject.CommonName)
	}
	ca := &CA{Cert: cert}
	if len(keyData) == 0 {
		return ca, nil
	}
	if ca.key, err = parseKeyPEM(keyData, "CA key"); err != nil {
		return nil, err
	}
	if err := checkPair(cert, ca.key, "the CA key", "the CA certificate"); err != nil {
		return nil, err
	}
	return ca, nil
}

// SaveCert writes only the CA certificate into dir, for a node that is
// not a manager and so must not hold the CA key.
func (ca *CA) SaveCert(dir string) error {
	if err := mkdir(dir); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, CACertFile), ca.CertPEM(), certMode)
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseCertPEM(data []byte, what string) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: the %s is not a PEM CERTIFICATE block", ErrMalformed, what)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: the %s: %w", ErrMalformed, what, err)
	}
	return cert, nil
}

func parseKeyPEM(data []byte, what string) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: the %s is not PEM", ErrMalformed, what)
	}
	return decodeKey(block, what)
}
