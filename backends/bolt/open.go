package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// FileName is the database file in the data directory.
const FileName = "warren.db"

// MetaBucket holds the file's own bookkeeping. Keys other than the ones
// this package writes are free for the store's owner (the raft FSM keeps
// its applied index there), and travel with snapshots.
const MetaBucket = "meta"

// The meta bucket marks a file as Warren's and records the newest record
// schema written to it, so an older binary refuses it instead of
// misreading it.
const (
	metaBucket = MetaBucket
	metaFormat = "format"
	metaSchema = "schema"
	formatName = "warren"
)

// layout is what makes a KV a particular store: its two files, the format
// its meta bucket names, the schema it records and its buckets. The KV
// itself (log, memtable, checkpoints, group commit) is the same for all.
type layout struct {
	file, wal string
	format    string
	// schema is the version recorded in meta/schema, and the newest one
	// this binary reads.
	schema  int
	buckets []string
	// appendOnly buckets only ever get keys above their last (raft's log):
	// checkpoints fill their pages instead of leaving room for inserts.
	appendOnly map[string]bool
	// adoptBare accepts a BoltDB file without a meta bucket whose buckets
	// are all this layout's (raft.db as written before it had a log).
	adoptBare bool
	// discardOrphanLog empties a log found beside a file that this package
	// never initialised (missing, empty, or bare): its records continued a
	// file that is gone. Without it such a log is replayed or refused.
	discardOrphanLog bool
	// pageSize is the BoltDB page size of a new file; 0 is the OS page
	// size. A file keeps the page size it was created with.
	pageSize int
	// checkpointBytes is the default of Options.CheckpointBytes; 0 is
	// 4 MiB.
	checkpointBytes int64
}

// warrenLayout is warren.db: the state store.
var warrenLayout = layout{
	file:    FileName,
	wal:     WALFileName,
	format:  formatName,
	schema:  types.SchemaVersion,
	buckets: state.Buckets(),
}

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

// Open opens (or creates) the Store in dataDir, with default Options.
func Open(dataDir string) (state.Store, error) {
	kv, err := OpenKV(dataDir, nil)
	if err != nil {
		return nil, err
	}
	return state.New(kv), nil
}

// OpenKV opens (or creates) dataDir/warren.db and its write-ahead log, and
// replays into warren.db what the log holds beyond it. The directory is made
// 0700 and the files 0600. A file that is not a Warren database, or that a
// newer Warren wrote, is refused before anything in it is changed.
func OpenKV(dataDir string, opts *Options) (*KV, error) {
	return openKV(dataDir, warrenLayout, opts)
}

// openKV opens the store l describes in dataDir, as OpenKV does warren.db.
func openKV(dataDir string, l layout, opts *Options) (*KV, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("bolt: create data directory: %w", err)
	}
	path := filepath.Join(dataDir, l.file)
	walFile := filepath.Join(dataDir, l.wal)
	if err := check(path, l); err != nil {
		return nil, err
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: lockTimeout,
		// The free list is rebuilt on open instead of written on every
		// commit: fewer pages per checkpoint.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
		// A read transaction blocks a checkpoint that must grow the
		// file's mapping; mapping 1 GiB of address space up front makes
		// that rare (it costs no memory).
		InitialMmapSize: 1 << 30,
		PageSize:        l.pageSize,
	})
	if err != nil {
		return nil, openError(path, err)
	}
	// The log is touched only now, under the file lock bbolt.Open took.
	var done uint64
	initialised := false
	if err := db.View(func(tx *bbolt.Tx) error {
		if meta := tx.Bucket([]byte(metaBucket)); meta != nil {
			done = applied(tx)
			initialised = meta.Get([]byte(metaFormat)) != nil
		}
		return nil
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: read %s: %w", path, err)
	}
	if !initialised && l.discardOrphanLog {
		if err := discardLog(walFile); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	w, records, err := openWAL(walFile, done)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	seq, err := replay(db, records, l)
	if err == nil {
		err = w.reset()
	}
	if err == nil {
		err = secure(dataDir, path, walFile)
	}
	if err != nil {
		_ = w.close()
		_ = db.Close()
		return nil, err
	}
	w.noSync = opts != nil && opts.NoSync
	kv := &KV{
		layout:    l,
		db:        db,
		wal:       w,
		opts:      opts.withDefaults(l),
		lastWrite: time.Now(),
		closing:   make(chan struct{}),
		stopped:   make(chan struct{}),
	}
	kv.mem.Store(newMemtable(seq))
	go kv.idleLoop()
	return kv, nil
}

// replay creates what is missing, records the schema, and applies the
// log's records (those warren.db does not hold yet, in sequence: openWAL
// checked) in one transaction. It returns the sequence of the last record
// warren.db then holds.
func replay(db *bbolt.DB, records []walRecord, l layout) (uint64, error) {
	var last uint64
	err := db.Update(func(tx *bbolt.Tx) error {
		if err := initialize(tx, l); err != nil {
			return err
		}
		last = applied(tx)
		for _, r := range records {
			for _, o := range r.ops {
				b := tx.Bucket([]byte(o.bucket))
				if b == nil {
					return fmt.Errorf("bolt: %s record %d writes to unknown bucket %q", l.wal, r.seq, o.bucket)
				}
				var err error
				if o.kind == opPut {
					err = b.Put(o.key, o.value)
				} else {
					err = b.Delete(o.key)
				}
				if err != nil {
					return err
				}
			}
			last = r.seq
		}
		return tx.Bucket([]byte(metaBucket)).Put([]byte(metaApplied), binary.BigEndian.AppendUint64(nil, last))
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: recover %s: %w", l.file, err)
	}
	return last, nil
}

// secure gives the data directory and files owner-only modes and makes
// their directory entries durable.
func secure(dataDir string, files ...string) error {
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return fmt.Errorf("bolt: %w", err)
	}
	for _, f := range files {
		if err := os.Chmod(f, 0o600); err != nil {
			return fmt.Errorf("bolt: %w", err)
		}
	}
	return syncDir(dataDir)
}

// discardLog empties the log at path, durably, before the file it belongs
// beside is initialised: were it only emptied in the page cache, a power
// failure could bring its records back beside the new file.
func discardLog(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = f.Truncate(0)
		if err == nil {
			err = f.Sync()
		}
		if e := f.Close(); err == nil {
			err = e
		}
	}
	if err != nil {
		return fmt.Errorf("bolt: discard %s, which belongs to no database: %w", path, err)
	}
	return nil
}

// check refuses an existing file that is not a database of layout l of a
// schema this binary knows, opening it read-only so that nothing is changed.
func check(path string, l layout) error {
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
			empty, bare := true, true
			_ = tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
				empty = false
				bare = bare && slices.Contains(l.buckets, string(name))
				return nil
			})
			if empty || (bare && l.adoptBare) {
				return nil // a BoltDB file with nothing (of another program) in it yet
			}
			return fmt.Errorf("%w: %s is a BoltDB file without Warren's %q bucket: move it away or choose another --data-dir", ErrNotWarren, path, metaBucket)
		}
		if f := string(meta.Get([]byte(metaFormat))); f != l.format {
			return fmt.Errorf("%w: %s has format %q, not %q: move it away or choose another --data-dir", ErrNotWarren, path, f, l.format)
		}
		v, err := strconv.Atoi(string(meta.Get([]byte(metaSchema))))
		if err != nil {
			return fmt.Errorf("%w: %s has an unreadable schema version: %v", ErrNotWarren, path, err)
		}
		if v > l.schema {
			return fmt.Errorf("%w: %s was written by a newer Warren (schema %d; this binary knows up to %d): upgrade warren",
				types.ErrNewerSchema, path, v, l.schema)
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

// initialize creates the buckets that are missing and records the format
// and the schema.
func initialize(tx *bbolt.Tx, l layout) error {
	for _, name := range append(slices.Clip(l.buckets), metaBucket) {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return err
		}
	}
	meta := tx.Bucket([]byte(metaBucket))
	if err := meta.Put([]byte(metaFormat), []byte(l.format)); err != nil {
		return err
	}
	return meta.Put([]byte(metaSchema), []byte(strconv.Itoa(l.schema)))
}
