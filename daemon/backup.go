package daemon

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/warren-orchestrator/warren/backends/pki"
	wraft "github.com/warren-orchestrator/warren/backends/raft"
	"github.com/warren-orchestrator/warren/orchestrator/api"
)

// A backup is a gzipped tar of:
//
//	backup.json   BackupInfo
//	warren.db     the state as of one applied raft entry
//	pki/ca.crt    the cluster CA, and its key: a restored cluster must go
//	pki/ca.key    on vouching for the nodes it had
const (
	backupInfoName  = "backup.json"
	backupStateName = "warren.db"
	// BackupFormat is the version of the backup layout.
	BackupFormat = 1
	// restoreMarker in a data directory says a restore completed there and
	// awaits `warren cluster init --force-new-cluster`.
	restoreMarker = "restore.json"
)

// ErrBadBackup is wrapped by the error for a backup file that cannot be
// restored.
var ErrBadBackup = errors.New("daemon: bad backup")

// BackupInfo describes a backup.
type BackupInfo struct {
	Format       int       `json:"format"`
	ClusterID    string    `json:"cluster_id"`
	CADigest     string    `json:"ca_digest"`
	AppliedIndex uint64    `json:"applied_index"`
	CreatedAt    time.Time `json:"created_at"`
}

// WriteBackup asks the cluster for a consistent copy of its state and
// writes the backup to out. The CA key comes from dataDir (the CLI runs
// the backup on a manager, whose data directory holds it).
func WriteBackup(ctx context.Context, client *api.Client, dataDir string, out io.Writer) (*BackupInfo, error) {
	ca, err := pki.LoadCA(pkiDir(dataDir))
	if err != nil {
		return nil, fmt.Errorf("%w (a backup holds the CA key, which only a manager's --data-dir has)", err)
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	info, err := client.Cluster(ctx)
	if err != nil {
		return nil, err
	}
	if info.CADigest != ca.Digest() {
		return nil, fmt.Errorf("daemon: the CA in %s is not the CA of the cluster at --manager (%s): pass the --data-dir of one of its managers", pkiDir(dataDir), info.CADigest)
	}
	// The state is spooled to a file first: tar needs an entry's size
	// before its content.
	spool, err := os.CreateTemp("", "warren-backup-*.db")
	if err != nil {
		return nil, fmt.Errorf("daemon: backup spool: %w", err)
	}
	defer func() { _ = spool.Close(); _ = os.Remove(spool.Name()) }()
	index, err := client.Backup(ctx, spool)
	if err != nil {
		return nil, err
	}
	size, err := spool.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	bi := &BackupInfo{Format: BackupFormat, ClusterID: info.ID, CADigest: info.CADigest, AppliedIndex: index, CreatedAt: time.Now().UTC()}
	meta, err := json.MarshalIndent(bi, "", "  ")
	if err != nil {
		return nil, err
	}
	gz := gzip.NewWriter(out)
	tw := tar.NewWriter(gz)
	add := func(name string, mode int64, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: size, ModTime: bi.CreatedAt, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	for _, e := range []struct {
		name string
		data []byte
	}{{backupInfoName, meta}, {PKIDir + "/" + pki.CACertFile, ca.CertPEM()}, {PKIDir + "/" + pki.CAKeyFile, caKey}} {
		if err := add(e.name, 0o600, int64(len(e.data)), bytes.NewReader(e.data)); err != nil {
			return nil, fmt.Errorf("daemon: write backup: %w", err)
		}
	}
	if err := add(backupStateName, 0o600, size, spool); err != nil {
		return nil, fmt.Errorf("daemon: write backup: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("daemon: write backup: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("daemon: write backup: %w", err)
	}
	return bi, nil
}

// Restore unpacks a backup into an empty data directory. The node it
// prepares starts with `warren cluster init --force-new-cluster`, which
// makes it the only manager of the restored cluster.
func Restore(in io.Reader, dataDir string) (*BackupInfo, error) {
	if err := prepareFresh(dataDir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, restoreMarker)); err == nil {
		return nil, fmt.Errorf("%w: %s holds a restore already: start it with `warren cluster init --force-new-cluster --data-dir %s`", ErrInitialized, dataDir, dataDir)
	}
	gz, err := gzip.NewReader(in)
	if err != nil {
		return nil, fmt.Errorf("%w: not a gzip file (%v): pass the file `warren cluster backup` wrote", ErrBadBackup, err)
	}
	tr := tar.NewReader(gz)
	var (
		bi            *BackupInfo
		caCert, caKey []byte
		seeded        bool
	)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: the archive is damaged (%v)", ErrBadBackup, err)
		}
		switch h.Name {
		case backupInfoName:
			bi = &BackupInfo{}
			if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(bi); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrBadBackup, backupInfoName, err)
			}
			if bi.Format != BackupFormat {
				return nil, fmt.Errorf("%w: format %d; this warren reads format %d: restore with the warren version that made it", ErrBadBackup, bi.Format, BackupFormat)
			}
		case PKIDir + "/" + pki.CACertFile:
			caCert, err = io.ReadAll(io.LimitReader(tr, 1<<20))
		case PKIDir + "/" + pki.CAKeyFile:
			caKey, err = io.ReadAll(io.LimitReader(tr, 1<<20))
		case backupStateName:
			if bi == nil || caCert == nil || caKey == nil {
				return nil, fmt.Errorf("%w: %s comes before %s and the CA: the archive was not written by `warren cluster backup`", ErrBadBackup, backupStateName, backupInfoName)
			}
			ca, perr := pki.ParseCA(caCert, caKey)
			if perr != nil {
				return nil, fmt.Errorf("%w: %w", ErrBadBackup, perr)
			}
			if ca.Digest() != bi.CADigest {
				return nil, fmt.Errorf("%w: its CA is not the one %s names", ErrBadBackup, backupInfoName)
			}
			if err := wraft.SeedStore(dataDir, tr); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrBadBackup, err)
			}
			if err := ca.Save(pkiDir(dataDir)); err != nil {
				return nil, err
			}
			seeded = true
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadBackup, h.Name, err)
		}
	}
	if !seeded {
		return nil, fmt.Errorf("%w: it holds no %s: pass the file `warren cluster backup` wrote", ErrBadBackup, backupStateName)
	}
	data, err := json.Marshal(bi)
	if err != nil {
		return nil, err
	}
	// The marker goes last: with it, the restore is whole.
	if err := writeFileAtomic(filepath.Join(dataDir, restoreMarker), data, 0o600); err != nil {
		return nil, err
	}
	return bi, nil
}

func loadRestoreMarker(dataDir string) (*BackupInfo, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, restoreMarker))
	if err != nil {
		return nil, err
	}
	var bi BackupInfo
	if err := json.Unmarshal(data, &bi); err != nil {
		return nil, fmt.Errorf("daemon: %s is damaged (%w): restore again into an empty directory", restoreMarker, err)
	}
	return &bi, nil
}
