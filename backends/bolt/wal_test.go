package bolt_test

import (
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

	appendBytes := func(b []byte) {
		f, err := os.OpenFile(wal, os.O_WRONLY|os.O_APPEND, 0)
		Expect(err).NotTo(HaveOccurred())
		_, err = f.Write(b)
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
		info, err := os.Stat(wal)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Size()).To(BeNumerically("<", 64), "emptied once replayed")
	})

	DescribeTable("loses its torn last write and keeps the rest",
		func(tail []byte) {
			crashed("a", "b")
			appendBytes(tail)
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
		Entry("zeros", make([]byte, 4096)),
		Entry("a header whose record never arrived", []byte{0, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3}),
	)

	It("cuts a record whose checksum does not match at the end", func() {
		crashed("a", "b")
		data, err := os.ReadFile(wal)
		Expect(err).NotTo(HaveOccurred())
		data[len(data)-1] ^= 0xff // the last byte of "b"'s record
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
		Expect(err).To(MatchError(ContainSubstring("warren.wal continues at record 3 but warren.db holds records up to 0")))
	})
})
