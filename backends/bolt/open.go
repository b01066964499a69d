package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// FileName is the database file in the data directory.
const FileName = "warren.db"

// The meta bucket marks a file as Warren's and records the newest record
// schema written to it, so an older binary refuses it instead of
// misreading it.
const (
	metaBucket = "meta"
	metaFormat = "format"
	metaSchema = "schema"
	formatName = "warren"
)

var (
	// ErrNotWarren is wrapped by the error for a file that is not a Warren
	// database.
	ErrNotWarren = errors.New("bolt: not a Warren database")
	// ErrLocked is wrapped by the error for a database another process has
	// open.
	ErrLocked = errors.New("bolt: database is in use")
)

// lockTimeout is how long Open waits for another process's lock on the file.
const lockTimeout = time.Second

// Path returns the database file of a data directory.
func Path(dataDir string) string { return filepath.Join(dataDir, FileName) }

// Open opens (or creates) the Store in dataDir.
func Open(dataDir string) (state.Store, error) {
	kv, err := OpenKV(dataDir)
	if err != nil {
		return nil, err
	}
	return state.New(kv), nil
}

// OpenKV opens (or creates) dataDir/warren.db. The directory is made 0700
// and the file 0600. A file that is not a Warren database, or that a newer
// Warren wrote, is refused before anything in it is changed.
func OpenKV(dataDir string) (*KV, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("bolt: create data directory: %w", err)
	}
	path := Path(dataDir)
	if err := check(path); err != nil {
		return nil, err
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: lockTimeout,
		// The free list is rebuilt on open instead of written on every
		// commit: fewer pages per commit on the write path.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if err != nil {
		return nil, openError(path, err)
	}
	if err := initialize(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: initialize %s: %w", path, err)
	}
	for p, mode := range map[string]fs.FileMode{dataDir: 0o700, path: 0o600} {
		if err := os.Chmod(p, mode); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("bolt: %w", err)
		}
	}
	return newKV(db), nil
}

// check refuses an existing file that is not a Warren database of a schema
// this binary knows, opening it read-only so that nothing is changed.
func check(path string) error {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("bolt: %w", err)
	case !info.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a regular file: move it away or choose another --data-dir", ErrNotWarren, path)
	case info.Size() == 0:
		return nil // created but never written: nothing to lose
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return openError(path, err)
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket([]byte(metaBucket))
		if meta == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bbolt.Bucket) error { empty = false; return nil })
			if empty {
				return nil // a BoltDB file with nothing in it yet
			}
			return fmt.Errorf("%w: %s is a BoltDB file without Warren's %q bucket: move it away or choose another --data-dir", ErrNotWarren, path, metaBucket)
		}
		if f := string(meta.Get([]byte(metaFormat))); f != formatName {
			return fmt.Errorf("%w: %s has format %q, not %q: move it away or choose another --data-dir", ErrNotWarren, path, f, formatName)
		}
		v, err := strconv.Atoi(string(meta.Get([]byte(metaSchema))))
		if err != nil {
			return fmt.Errorf("%w: %s has an unreadable schema version: %v", ErrNotWarren, path, err)
		}
		if v > types.SchemaVersion {
			return fmt.Errorf("%w: %s was written by a newer Warren (schema %d; this binary knows up to %d): upgrade warren",
				types.ErrNewerSchema, path, v, types.SchemaVersion)
		}
		return nil
	})
}

func openError(path string, err error) error {
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return fmt.Errorf("%w: %s is locked by another process (is another warren running with this --data-dir?)", ErrLocked, path)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrChecksum):
		return fmt.Errorf("%w: %s is not a BoltDB file (%v): move it away or choose another --data-dir", ErrNotWarren, path, err)
	}
	return fmt.Errorf("bolt: open %s: %w", path, err)
}

// initialize creates the buckets that are missing and records the schema.
func initialize(db *bbolt.DB) error {
	return db.Update(func(tx *bbolt.Tx) error {
		for _, name := range append(state.Buckets(), metaBucket) {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		meta := tx.Bucket([]byte(metaBucket))
		if err := meta.Put([]byte(metaFormat), []byte(formatName)); err != nil {
			return err
		}
		return meta.Put([]byte(metaSchema), []byte(strconv.Itoa(types.SchemaVersion)))
	})
}
