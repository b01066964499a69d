package pki

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Node certificates sit beside the CA's files as NAME.crt and NAME.key.
const (
	// CACertFile is the CA certificate in a PKI directory; every node has it.
	CACertFile = "ca.crt"
	// CAKeyFile is the CA key in a PKI directory; only managers have it.
	CAKeyFile = "ca.key"
)

// File modes: certificates are public, keys readable by their owner only.
const (
	certMode fs.FileMode = 0o644
	keyMode  fs.FileMode = 0o600
	dirMode  fs.FileMode = 0o700
)

// What to tell an operator whose node has no PKI files yet.
const remedyMissing = "run `warren cluster init` first, or join the cluster"

// Save writes ca.crt (0644) and ca.key (0600) into dir, creating it if
// needed. Each file is replaced atomically, so a crash leaves the old file
// or the new one, never half of either.
func (ca *CA) Save(dir string) error {
	// The key goes first: a ca.crt on disk then always has its key beside
	// it, and a crash in between shows up as a mismatch, not a lost key.
	return saveBoth(dir, CACertFile, CAKeyFile, ca.Cert, ca.key)
}

// Save writes NAME.crt (0644) and NAME.key (0600) into dir, creating it if
// needed, each replaced atomically.
func (c *Cert) Save(dir, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return saveBoth(dir, name+".crt", name+".key", c.Leaf, c.Key)
}

// LoadCA reads the CA certificate and key that Save wrote into dir.
func LoadCA(dir string) (*CA, error) {
	cert, err := loadCACert(dir)
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, CAKeyFile)
	key, err := readKey(keyPath, "only managers hold the CA key: run this on a manager")
	if err != nil {
		return nil, err
	}
	if err := checkPair(cert, key, keyPath, filepath.Join(dir, CACertFile)); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key}, nil
}

// LoadCAPool reads dir/ca.crt into a pool, for workers and CLI users, who
// hold the CA certificate but not its key.
func LoadCAPool(dir string) (*x509.CertPool, error) {
	cert, err := loadCACert(dir)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool, nil
}

// LoadCert reads NAME.crt and NAME.key that Cert.Save wrote into dir.
func LoadCert(dir, name string) (*Cert, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	certPath := filepath.Join(dir, name+".crt")
	keyPath := filepath.Join(dir, name+".key")
	leaf, err := readCert(certPath, remedyMissing)
	if err != nil {
		return nil, err
	}
	key, err := readKey(keyPath, remedyMissing)
	if err != nil {
		return nil, err
	}
	if err := checkPair(leaf, key, keyPath, certPath); err != nil {
		return nil, err
	}
	return &Cert{Leaf: leaf, Key: key}, nil
}

func loadCACert(dir string) (*x509.Certificate, error) {
	path := filepath.Join(dir, CACertFile)
	cert, err := readCert(path, remedyMissing)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%w: %s is not a CA certificate: restore the cluster's ca.crt", ErrMalformed, path)
	}
	return cert, nil
}

func saveBoth(dir, certName, keyName string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	if err := mkdir(dir); err != nil {
		return err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return fmt.Errorf("%w (for %s)", err, filepath.Join(dir, keyName))
	}
	if err := writeFileAtomic(filepath.Join(dir, keyName), kp, keyMode); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, certName), certPEM(cert), certMode)
}

func mkdir(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("pki: create %s: %w", dir, err)
	}
	return nil
}

// writeFileAtomic replaces path with data: write a temporary file in the
// same directory, fsync it, rename it over path, then fsync the directory
// so the rename itself survives a power cut.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// Chmod rather than trust the umask: a key must never be group- or
	// world-readable, and a certificate must be readable by the CLI.
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("pki: sync %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("pki: sync %s: %w", dir, err)
	}
	return nil
}

// readPEM returns the first PEM block of path whose type is one of types.
func readPEM(path, remedy string, types ...string) (*pem.Block, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &fileError{msg: fmt.Sprintf("pki: %s not found: %s", path, remedy), sentinel: ErrNotFound, cause: err}
	}
	if err != nil {
		return nil, fmt.Errorf("pki: read %s: %w", path, err)
	}
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%w: %s holds no %s block: restore it from a backup or issue a new one",
				ErrMalformed, path, strings.Join(types, " or "))
		}
		for _, t := range types {
			if block.Type == t {
				return block, nil
			}
		}
	}
}

func readCert(path, remedy string) (*x509.Certificate, error) {
	block, err := readPEM(path, remedy, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, path, err)
	}
	return cert, nil
}

// readKey accepts PKCS#8 (what Save writes) and SEC 1 (what openssl ecparam
// writes), so an operator can bring a key made by hand.
func readKey(path, remedy string) (*ecdsa.PrivateKey, error) {
	block, err := readPEM(path, remedy, "PRIVATE KEY", "EC PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	return decodeKey(block, path)
}

// decodeKey accepts PKCS#8 and SEC 1 blocks; what names the key in errors.
func decodeKey(block *pem.Block, what string) (*ecdsa.PrivateKey, error) {
	if block.Type == "EC PRIVATE KEY" {
		key, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
		}
		return key, nil
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s holds a %T, not an ECDSA key", ErrMalformed, what, parsed)
	}
	return key, nil
}

func checkPair(cert *x509.Certificate, key *ecdsa.PrivateKey, keyPath, certPath string) error {
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); ok && pub.Equal(&key.PublicKey) {
		return nil
	}
	return fmt.Errorf("%w: %s does not belong to %s: restore both files from the same backup, or issue a new certificate",
		ErrMismatch, keyPath, certPath)
}

// checkName refuses names that would write outside dir or over the CA's
// own files.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("%w: certificate name %q: use a plain file name such as \"node\"", ErrInvalidRequest, name)
	}
	if name+".crt" == CACertFile {
		return fmt.Errorf("%w: certificate name %q would overwrite the CA: choose another name", ErrInvalidRequest, name)
	}
	return nil
}

// fileError keeps a message written for the operator while still matching
// its sentinel and the underlying cause with errors.Is.
type fileError struct {
	msg      string
	sentinel error
	cause    error
}

func (e *fileError) Error() string   { return e.msg }
func (e *fileError) Unwrap() []error { return []error{e.sentinel, e.cause} }
