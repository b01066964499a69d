package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// WALFileName is the write-ahead log beside warren.db.
const WALFileName = "warren.wal"

// The log starts with a fixed header; then come records, each
//
//	uint32 payload length | uint32 CRC-32C of the payload | payload
//
// with the payload
//
//	uint64 sequence | uint32 op count | ops
//
// and each op
//
//	byte kind | uvarint len, bucket | uvarint len, key | (put) uvarint len, value
//
// Integers are big-endian. A record is one committed transaction; sequences
// increase by one from record to record.
var walHeader = []byte("warren-wal v1\n\x00\x00")

const (
	opPut    byte = 1
	opDelete byte = 2

	recordHeaderLen = 8
	// maxRecordLen bounds a record's length field, so that a damaged
	// length is recognised instead of allocating gigabytes.
	maxRecordLen = 1 << 30
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// op is one write of a transaction.
type op struct {
	kind       byte
	bucket     string
	key, value []byte
}

// walRecord is one transaction read back from the log.
type walRecord struct {
	seq uint64
	ops []op
}

// wal is the log of transactions committed since the last checkpoint into
// warren.db (or raft.db: raft.wal has the same format). A commit is acknowledged once its record is written and
// fdatasync'd: one sync per commit, where BoltDB needs two.
//
// The file is kept longer than its records, filled with zeros past the last
// one (it starts at preallocBytes and doubles, by up to growMaxBytes, when
// records reach its end): a record then overwrites blocks that already exist, so its
// fdatasync has no file size or block allocation to record, which is about
// a third cheaper than an append on this project's disks. Emptying the log
// zeroes what it held instead of truncating it. Sequence numbers never
// repeat, so a record left over from before a checkpoint (sequence at or
// below warren.db's wal_applied) is recognised as stale wherever a crash
// left it.
type wal struct {
	f    *os.File
	path string
	buf  []byte
	end  int64 // where the next record goes
	size int64 // the file's length
	// noSync leaves appended records to the page cache (Options.NoSync).
	noSync bool
}

// preallocBytes is the zero-filled length a new log starts with; it grows
// as records need, doubling, by at most growMaxBytes at a time, and keeps
// its size across checkpoints, so a busy log soon holds a checkpoint's
// worth of records (CheckpointBytes) without growing.
const (
	preallocBytes = 256 << 10
	growMaxBytes  = 8 << 20
)

// openWAL opens the log (creating it if missing) and reads the records it
// holds beyond applied, changing nothing. A damaged or incomplete last
// record, which is all a crash can leave (every acknowledged record was
// synced whole before the next was begun), is left out, and zeroed with the
// rest by the reset that follows the replay. Damage followed by further
// live records is refused.
func openWAL(path string, applied uint64) (*wal, []walRecord, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("bolt: open write-ahead log: %w", err)
	}
	w := &wal{f: f, path: path}
	records, err := w.load(applied)
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return w, records, nil
}

func (w *wal) load(applied uint64) ([]walRecord, error) {
	data, err := io.ReadAll(w.f)
	if err != nil {
		return nil, fmt.Errorf("bolt: read %s: %w", w.path, err)
	}
	w.size, w.end = int64(len(data)), int64(len(data))
	if len(data) < len(walHeader) && bytes.HasPrefix(walHeader, data) {
		return nil, nil // new, or cut short while it was being created
	}
	if !bytes.HasPrefix(data, walHeader) {
		return nil, fmt.Errorf("%w: %s is not a Warren write-ahead log: move it away or choose another --data-dir", ErrNotWarren, w.path)
	}
	var records []walRecord
	last := applied
	off := len(walHeader)
	for off < len(data) {
		rec, n, err := decodeRecord(data[off:])
		if err != nil {
			if laterRecord(data[off+1:], last) {
				return nil, fmt.Errorf("bolt: %s is damaged at offset %d (%v) and has records after it: restore the data directory from a backup", w.path, off, err)
			}
			break // zeros, a stale tail, or a write that never completed
		}
		switch {
		case rec.seq <= applied:
			// In warren.db already: left over from before a checkpoint.
		case rec.seq == last+1:
			records = append(records, rec)
			last = rec.seq
		default:
			return nil, fmt.Errorf("bolt: %s is damaged at offset %d: record %d where %d was due: restore the data directory from a backup",
				w.path, off, rec.seq, last+1)
		}
		off += n
	}
	w.end = int64(off)
	return records, nil
}

// laterRecord reports whether a live record (one after sequence last)
// starts anywhere in data, which tells damage in the middle of the log from
// a torn last write or stale records.
func laterRecord(data []byte, last uint64) bool {
	for i := 0; i+recordHeaderLen <= len(data); i++ {
		if binary.BigEndian.Uint32(data[i:]) == 0 {
			continue // zeros: the common case, skipped cheaply
		}
		if rec, _, err := decodeRecord(data[i:]); err == nil && rec.seq > last {
			return true
		}
	}
	return false
}

func decodeRecord(data []byte) (walRecord, int, error) {
	var rec walRecord
	if len(data) < recordHeaderLen {
		return rec, 0, errors.New("incomplete record header")
	}
	n := binary.BigEndian.Uint32(data)
	if n < 12 || n > maxRecordLen {
		return rec, 0, fmt.Errorf("record length %d out of range", n)
	}
	if uint64(len(data)-recordHeaderLen) < uint64(n) {
		return rec, 0, errors.New("incomplete record")
	}
	payload := data[recordHeaderLen : recordHeaderLen+int(n)]
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(data[4:]) {
		return rec, 0, errors.New("checksum mismatch")
	}
	rec.seq = binary.BigEndian.Uint64(payload)
	count := binary.BigEndian.Uint32(payload[8:])
	p := payload[12:]
	field := func() ([]byte, bool) {
		l, k := binary.Uvarint(p)
		if k <= 0 || l > uint64(len(p)-k) {
			return nil, false
		}
		f := p[k : k+int(l)]
		p = p[k+int(l):]
		return f, true
	}
	for range count {
		if len(p) == 0 {
			return rec, 0, errors.New("truncated op")
		}
		o := op{kind: p[0]}
		p = p[1:]
		b, ok1 := field()
		k, ok2 := field()
		ok3 := true
		switch o.kind {
		case opPut:
			o.value, ok3 = field()
		case opDelete:
		default:
			return rec, 0, fmt.Errorf("unknown op %d", o.kind)
		}
		if !ok1 || !ok2 || !ok3 {
			return rec, 0, errors.New("truncated op")
		}
		o.bucket, o.key = string(b), k
		rec.ops = append(rec.ops, o)
	}
	if len(p) != 0 {
		return rec, 0, errors.New("trailing bytes in record")
	}
	return rec, recordHeaderLen + int(n), nil
}

// append writes one record and syncs it to the disk.
func (w *wal) append(seq uint64, ops []op) error {
	b := w.buf[:0]
	b = append(b, make([]byte, recordHeaderLen)...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ops)))
	for _, o := range ops {
		b = append(b, o.kind)
		b = binary.AppendUvarint(b, uint64(len(o.bucket)))
		b = append(b, o.bucket...)
		b = binary.AppendUvarint(b, uint64(len(o.key)))
		b = append(b, o.key...)
		if o.kind == opPut {
			b = binary.AppendUvarint(b, uint64(len(o.value)))
			b = append(b, o.value...)
		}
	}
	payload := b[recordHeaderLen:]
	if len(payload) > maxRecordLen {
		return fmt.Errorf("bolt: transaction of %d bytes is larger than the %d-byte limit: split it", len(payload), maxRecordLen)
	}
	binary.BigEndian.PutUint32(b, uint32(len(payload)))
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(payload, crcTable))
	w.buf = b
	if need := w.end + int64(len(b)); need > w.size {
		grown := max(need, w.size+min(w.size, growMaxBytes))
		if err := w.zero(w.size, grown); err != nil {
			return err
		}
	}
	if _, err := w.f.WriteAt(b, w.end); err != nil {
		return fmt.Errorf("bolt: write %s: %w", w.path, err)
	}
	w.end += int64(len(b))
	if w.noSync {
		return nil
	}
	return w.sync()
}

func (w *wal) sync() error {
	if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
		return fmt.Errorf("bolt: sync %s: %w", w.path, err)
	}
	return nil
}

// reset empties the log once its records are in warren.db: it zeroes the
// records, last first, so that a crash part way leaves a prefix of stale
// records and then zeros, and makes sure the file has its header and its
// zero-filled room ahead.
func (w *wal) reset() error {
	h := int64(len(walHeader))
	if w.size < h {
		if err := w.f.Truncate(0); err != nil {
			return fmt.Errorf("bolt: truncate %s: %w", w.path, err)
		}
		if _, err := w.f.WriteAt(walHeader, 0); err != nil {
			return fmt.Errorf("bolt: write %s: %w", w.path, err)
		}
		w.size, w.end = h, h
	}
	if w.end > h {
		if err := w.zero(h, w.end); err != nil {
			return err
		}
	}
	if w.size < preallocBytes {
		if err := w.zero(w.size, preallocBytes); err != nil {
			return err
		}
	}
	w.end = h
	return w.sync()
}

// zero writes zeros over [from, to), last chunk first, and grows the file
// to to if it is shorter.
func (w *wal) zero(from, to int64) error {
	const chunk = 1 << 20
	zeros := make([]byte, chunk)
	for hi := to; hi > from; {
		lo := max(from, hi-chunk)
		if _, err := w.f.WriteAt(zeros[:hi-lo], lo); err != nil {
			return fmt.Errorf("bolt: write %s: %w", w.path, err)
		}
		hi = lo
	}
	w.size = max(w.size, to)
	return nil
}

func (w *wal) close() error { return w.f.Close() }

// syncDir makes a new file's directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("bolt: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("bolt: sync %s: %w", dir, err)
	}
	return nil
}
