package daemon

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/warren-orchestrator/warren/backends/bolt"
	"github.com/warren-orchestrator/warren/backends/pki"
)

// Files of a data directory.
const (
	IdentityFile = "node.json"
	PKIDir       = "pki"
	// NodeCertFile holds the node's certificate and key in one file, so
	// that a renewal replaces both at once: a crash between writing a key
	// file and its certificate file would leave a pair that does not match.
	NodeCertFile = "node.pem"
	// AdminCertName is the pki/ name (admin.crt, admin.key) of the local
	// administrator's certificate (made by init and restore).
	AdminCertName = "admin"
)

var (
	// ErrInitialized is wrapped by the error for init or join on a data
	// directory that already holds a node.
	ErrInitialized = errors.New("daemon: the data directory already holds a node")
	// ErrNotInitialized is wrapped by the error for starting a node whose
	// data directory holds none.
	ErrNotInitialized = errors.New("daemon: the data directory holds no node")
	// ErrBadToken is wrapped by the error for a join token that is
	// malformed, or not the cluster's.
	ErrBadToken = errors.New("daemon: bad join token")
)

// Identity is node.json: who this node is. It is written last by init and
// join, so its presence says the node was set up completely.
type Identity struct {
	ClusterID string `json:"cluster_id"`
	NodeID    string `json:"node_id"`
	// Manager nodes run raft and the API; Worker nodes run tasks. A node
	// can be both (init makes a hybrid node unless told otherwise).
	Manager bool `json:"manager"`
	Worker  bool `json:"worker"`
	// APIAddr and RaftAddr are where a manager serves (host:port).
	APIAddr  string `json:"api_addr,omitempty"`
	RaftAddr string `json:"raft_addr,omitempty"`
	// Managers are the API addresses this node last heard of, for a worker
	// to reach the cluster after a restart.
	Managers []string `json:"managers,omitempty"`
	// Runtime and Containerd are the worker's runtime and containerd
	// socket as init or join set them (Config.Runtime, Config.Containerd;
	// empty: containerd at its default socket).
	Runtime    string `json:"runtime,omitempty"`
	Containerd string `json:"containerd,omitempty"`
	// Bridge and Subnet are the containers' network (Config.Bridge,
	// Config.Subnet; empty: cninet's defaults).
	Bridge string `json:"bridge,omitempty"`
	Subnet string `json:"subnet,omitempty"`
}

func loadIdentity(dir string) (*Identity, error) {
	path := filepath.Join(dir, IdentityFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s not found: create a cluster with `warren cluster init --data-dir %s`, or join one with `warren manager join` or `warren worker join`",
			ErrNotInitialized, path, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("daemon: read %s: %w", path, err)
	}
	var id Identity
	if err := json.Unmarshal(data, &id); err != nil {
		return nil, fmt.Errorf("daemon: %s is damaged (%w): restore the data directory from a backup", path, err)
	}
	if id.NodeID == "" || id.ClusterID == "" || (!id.Manager && !id.Worker) {
		return nil, fmt.Errorf("daemon: %s is incomplete (no node ID, cluster ID or role): restore the data directory from a backup", path)
	}
	return &id, nil
}

func (id *Identity) save(dir string) error {
	data, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, IdentityFile), append(data, '\n'), 0o600)
}

// nodeFiles are what a node keeps in its data directory.
var nodeFiles = append([]string{IdentityFile, PKIDir, "snapshots"}, managerFiles...)

// managerFiles are the replicated state and the raft log of a manager.
var managerFiles = []string{bolt.FileName, bolt.WALFileName, bolt.RaftFileName, bolt.RaftWALFileName}

// checkFresh refuses a data directory that already holds a node, or any of
// its files: init and join never write over a node's state.
func checkFresh(dir string) error {
	if id, err := loadIdentity(dir); err == nil {
		return fmt.Errorf("%w: %s is node %s of cluster %s: start it with `warren start --data-dir %s`, or pass an empty --data-dir",
			ErrInitialized, dir, id.NodeID, id.ClusterID, dir)
	}
	for _, name := range nodeFiles {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("%w: %s holds %s from an earlier init or join that did not finish: remove the directory's content, or pass another --data-dir",
				ErrInitialized, dir, name)
		}
	}
	return nil
}

// prepareFresh makes dir a data directory for a new node: created with
// owner-only access, and holding no node yet.
func prepareFresh(dir string) error {
	if err := prepareDir(dir); err != nil {
		return err
	}
	return checkFresh(dir)
}

func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("daemon: create data directory %s: %w", dir, err)
	}
	// A data directory holds keys and the state: owner only, whatever
	// the umask.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("daemon: data directory %s: %w", dir, err)
	}
	return nil
}

// writeFileAtomic replaces path by a fully written, fsynced file.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return fmt.Errorf("daemon: write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("daemon: write %s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("daemon: sync %s: %w", filepath.Dir(path), err)
	}
	defer func() { _ = d.Close() }()
	return d.Sync()
}

// A join token is "WRN-1-<CA digest hex>-<secret>": the digest lets the
// joining node check the manager it dials before it sends the secret, as
// Swarm's tokens do.
const tokenPrefix = "WRN-1-"

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func newToken(caDigest string) (string, error) {
	secret := make([]byte, 20)
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("daemon: join token: %w", err)
	}
	return tokenPrefix + strings.TrimPrefix(caDigest, "sha256:") + "-" + strings.ToLower(tokenEncoding.EncodeToString(secret)), nil
}

// tokenDigest returns the CA digest a token carries.
func tokenDigest(token string) (string, error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	hex, secret, ok2 := strings.Cut(rest, "-")
	if !ok || !ok2 || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" || len(secret) != 32 {
		return "", fmt.Errorf("%w: it should look like %s<64 hex digits>-<32 characters>: copy it again from `warren cluster join-token worker` (or manager) on a manager",
			ErrBadToken, tokenPrefix)
	}
	return "sha256:" + hex, nil
}

// sameToken compares in constant time, so the answer's timing does not
// tell an attacker how much of a guess was right.
func sameToken(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// certIPs are the addresses a node's certificate is issued for: the hosts
// of its addresses that are IPs, and loopback.
func certIPs(addrs ...string) []net.IP {
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	for _, a := range addrs {
		host := a
		if h, _, err := net.SplitHostPort(a); err == nil {
			host = h
		}
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && !ip.Equal(ips[0]) {
			ips = append(ips, ip)
		}
	}
	return ips
}

func pkiDir(dataDir string) string { return filepath.Join(dataDir, PKIDir) }

// credentials are what a node loads from pki/ to talk to the cluster. The
// certificate is swapped when it is renewed or the node changes role;
// every TLS config reads it per handshake.
type credentials struct {
	ca   *pki.CA // with its key on managers
	cert atomic.Pointer[pki.Cert]
}

func newCredentials(ca *pki.CA, cert *pki.Cert) *credentials {
	c := &credentials{ca: ca}
	c.cert.Store(cert)
	return c
}

// current is the node's certificate now.
func (c *credentials) current() *pki.Cert { return c.cert.Load() }

func loadCredentials(dataDir string, manager bool) (*credentials, error) {
	dir := pkiDir(dataDir)
	var c credentials
	var err error
	if manager {
		c.ca, err = pki.LoadCA(dir)
	} else {
		var pool []byte
		pool, err = os.ReadFile(filepath.Join(dir, pki.CACertFile))
		if err == nil {
			c.ca, err = pki.ParseCA(pool, nil)
		}
	}
	if err != nil {
		return nil, err
	}
	cert, err := LoadNodeCert(dataDir)
	if err != nil {
		return nil, err
	}
	c.cert.Store(cert)
	return &c, nil
}

// LoadNodeCert reads the node's certificate and key from its data
// directory.
func LoadNodeCert(dataDir string) (*pki.Cert, error) {
	path := filepath.Join(pkiDir(dataDir), NodeCertFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("daemon: the node's certificate: %w: restore the data directory from a backup, or join again", err)
	}
	var certPEM, keyPEM []byte
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			certPEM = pem.EncodeToMemory(b)
		} else {
			keyPEM = pem.EncodeToMemory(b)
		}
	}
	cert, err := pki.ParseCert(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return cert, nil
}

// saveNodeCert replaces the node's certificate and key together.
func saveNodeCert(dataDir string, cert *pki.Cert) error {
	certPEM, keyPEM, err := cert.PEM()
	if err != nil {
		return err
	}
	dir := pkiDir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, NodeCertFile), append(certPEM, keyPEM...), 0o600)
}
