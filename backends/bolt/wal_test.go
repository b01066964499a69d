package bolt_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/bolt"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

// noCheckpoints keeps every write in the log until Close.
var noCheckpoints = &bolt.Options{CheckpointBytes: 1 << 40, IdleCheckpoint: 1 << 40}

var _ = Describe("The write-ahead log", func() {
	var (
		dir string
		wal string
	)

	// writeAndCrash writes services named names to the store in from (made
	// if empty) and leaves to as a crash would: the writes in the log only.
	// It copies the files of the open store, so no checkpoint runs.
	writeAndCrash := func(from, to string, names ...string) {
		GinkgoHelper()
		kv, err := bolt.OpenKV(from, noCheckpoints)
		Expect(err).NotTo(HaveOccurred())
		s := state.New(kv)
		for _, n := range names {
			Expect(s.UpdateService(typestest.Service("id-"+n, n))).To(Succeed())
		}
		for _, f := range []string{bolt.FileName, bolt.WALFileName} {
			b, err := os.ReadFile(filepath.Join(from, f))
			Expect(err).NotTo(HaveOccurred())
			Expect(os.WriteFile(filepath.Join(to, f), b, 0o600)).To(Succeed())
		}
		Expect(s.Close()).To(Succeed())
	}
	crashed := func(names ...string) { writeAndCrash(GinkgoT().TempDir(), dir, names...) }

	names := func(s state.Store) []string {
		GinkgoHelper()
		ss, err := s.ListServices()
		Expect(err).NotTo(HaveOccurred())
		var out []string
		for _, svc := range ss {
			out = append(out, svc.Name)
		}
		return out
	}

	// recordsEnd is where the log's records end: the zeros of the
	// preallocated file follow.
	recordsEnd := func(data []byte) int { return bytes.LastIndexFunc(data, func(r rune) bool { return r != 0 }) + 1 }
	// tear writes b right after the last record, as a write cut short.
	tear := func(b []byte) {
		GinkgoHelper()
		data, err := os.ReadFile(wal)
		Expect(err).NotTo(HaveOccurred())
		f, err := os.OpenFile(wal, os.O_WRONLY, 0)
		Expect(err).NotTo(HaveOccurred())
		_, err = f.WriteAt(b, int64(recordsEnd(data)))
		Expect(err).NotTo(HaveOccurred())
		Expect(f.Close()).To(Succeed())
	}

	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		wal = filepath.Join(dir, bolt.WALFileName)
	})

	It("is replayed into warren.db when the store opens after a crash", func() {
		crashed("a", "b", "c")
		s, err := bolt.Open(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(names(s)).To(Equal([]string{"a", "b", "c"}))
		Expect(s.Close()).To(Succeed())
		data, err := os.ReadFile(wal)
		Expect(err).NotTo(HaveOccurred())
		Expect(recordsEnd(data)).To(BeNumerically("<=", 16), "emptied (zeroed) once replayed")
		Expect(len(data)).To(BeNumerically(">=", 256<<10), "kept preallocated")
	})

	DescribeTable("loses its torn last write and keeps the rest",
		func(tail []byte) {
			crashed("a", "b")
			tear(tail)
			s, err := bolt.Open(dir)
			Expect(err).NotTo(HaveOccurred())
			Expect(names(s)).To(Equal([]string{"a", "b"}))
			Expect(s.Close()).To(Succeed())
			// The log goes on cleanly after the cut: crash again.
			again := GinkgoT().TempDir()
			writeAndCrash(dir, again, "c")
			s, err = bolt.Open(again)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(s.Close)
			Expect(names(s)).To(Equal([]string{"a", "b", "c"}))
		},
		Entry("a partial header", []byte{0, 0, 1}),
		Entry("a header of zeros", make([]byte, 8)),
		Entry("a header whose record never arrived", []byte{0, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3}),
	)

	It("cuts a record whose checksum does not match at the end", func() {
		crashed("a", "b")
		data, err := os.ReadFile(wal)
		Expect(err).NotTo(HaveOccurred())
		data[recordsEnd(data)-1] ^= 0xff // the last byte of "b"'s record
		Expect(os.WriteFile(wal, data, 0o600)).To(Succeed())
		s, err := bolt.Open(dir)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(s.Close)
		Expect(names(s)).To(Equal([]string{"a"}))
	})

	It("refuses damage followed by more records, changing nothing", func() {
		crashed("a", "b", "c")
		data, err := os.ReadFile(wal)
		Expect(err).NotTo(HaveOccurred())
		data[40] ^= 0xff // inside the first record
		Expect(os.WriteFile(wal, data, 0o600)).To(Succeed())
		_, err = bolt.Open(dir)
		Expect(err).To(MatchError(ContainSubstring("is damaged at offset 16")))
		Expect(err).To(MatchError(ContainSubstring("restore the data directory from a backup")))
		after, err := os.ReadFile(wal)
		Expect(err).NotTo(HaveOccurred())
		Expect(after).To(Equal(data))
	})

	It("refuses a file that is not a Warren log", func() {
		Expect(os.WriteFile(wal, []byte("something else entirely\n"), 0o600)).To(Succeed())
		_, err := bolt.Open(dir)
		Expect(errors.Is(err, bolt.ErrNotWarren)).To(BeTrue())
		Expect(err).To(MatchError(ContainSubstring("not a Warren write-ahead log")))
	})

	It("refuses a log that does not continue warren.db", func() {
		live := GinkgoT().TempDir()
		s, err := bolt.Open(live)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.UpdateService(typestest.Service("id-a", "a"))).To(Succeed())
		Expect(s.UpdateService(typestest.Service("id-b", "b"))).To(Succeed())
		Expect(s.Close()).To(Succeed()) // checkpointed: warren.db holds records 1-2
		kv, err := bolt.OpenKV(live, noCheckpoints)
		Expect(err).NotTo(HaveOccurred())
		Expect(state.New(kv).UpdateService(typestest.Service("id-c", "c"))).To(Succeed())
		// Only the log (record 3) reaches dir, beside a new warren.db.
		b, err := os.ReadFile(filepath.Join(live, bolt.WALFileName))
		Expect(err).NotTo(HaveOccurred())
		Expect(kv.Close()).To(Succeed())
		Expect(os.WriteFile(wal, b, 0o600)).To(Succeed())
		_, err = bolt.Open(dir)
		Expect(err).To(MatchError(ContainSubstring("record 3 where 1 was due")))
	})

	When("a checkpoint was made but the log not emptied, or only partly", func() {
		var live string
		BeforeEach(func() {
			// Records 1 and 2 in the log; then a clean close checkpoints
			// them into warren.db, whose copy goes beside the old log.
			live = GinkgoT().TempDir()
			writeAndCrash(live, dir, "a", "b")
			b, err := os.ReadFile(bolt.Path(live))
			Expect(err).NotTo(HaveOccurred())
			Expect(os.WriteFile(bolt.Path(dir), b, 0o600)).To(Succeed())
		})

		It("skips the stale records", func() {
			s, err := bolt.Open(dir)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(s.Close)
			Expect(names(s)).To(Equal([]string{"a", "b"}))
		})

		It("skips stale records left behind zeros", func() {
			data, err := os.ReadFile(wal)
			Expect(err).NotTo(HaveOccurred())
			first := binary.BigEndian.Uint32(data[16:]) + 8
			clear(data[16 : 16+first]) // record 1 zeroed, record 2 not yet
			Expect(os.WriteFile(wal, data, 0o600)).To(Succeed())
			s, err := bolt.Open(dir)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(s.Close)
			Expect(names(s)).To(Equal([]string{"a", "b"}))
		})
	})
})
