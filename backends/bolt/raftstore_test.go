package bolt_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	bbolt "go.etcd.io/bbolt"

	"github.com/warren-orchestrator/warren/backends/bolt"
)

// The same specs hold raft's in-memory store to account: where the two
// disagree, the contract is wrong or RaftStore is.
var (
	_ = describeRaftStore("raft.InmemStore", func() (raft.LogStore, raft.StableStore) {
		s := raft.NewInmemStore()
		return s, s
	})
	_ = describeRaftStore("bolt.RaftStore", func() (raft.LogStore, raft.StableStore) {
		s := openRaftStore(GinkgoT().TempDir())
		return s, s
	})
	// Reads meet logs in the memtable, in raft.db, and both at once.
	_ = describeRaftStore("bolt.RaftStore checkpointing every 4 KiB", func() (raft.LogStore, raft.StableStore) {
		s := openRaftStoreWith(GinkgoT().TempDir(), &bolt.Options{CheckpointBytes: 4 << 10})
		return s, s
	})
	_ = describeRaftStore("bolt.RaftStore checkpointing every write", func() (raft.LogStore, raft.StableStore) {
		s := openRaftStoreWith(GinkgoT().TempDir(), &bolt.Options{CheckpointBytes: 1})
		return s, s
	})
)

// openRaftStore opens a RaftStore that is closed when the spec ends.
func openRaftStore(dir string) *bolt.RaftStore {
	GinkgoHelper()
	s, err := bolt.OpenRaftStore(dir)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(s.Close)
	return s
}

func openRaftStoreWith(dir string, opts *bolt.Options) *bolt.RaftStore {
	GinkgoHelper()
	s, err := bolt.OpenRaftStoreWith(dir, opts)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(s.Close)
	return s
}

// raftLog is a log whose fields are all derived from its index, so that a
// spec can tell which write it reads back.
func raftLog(index, term uint64) *raft.Log {
	return &raft.Log{
		Index:      index,
		Term:       term,
		Type:       raft.LogCommand,
		Data:       fmt.Appendf(nil, "data %d/%d", index, term),
		Extensions: fmt.Appendf(nil, "ext %d", index),
		AppendedAt: time.Unix(1_700_000_000, int64(index)*1000+int64(term)),
	}
}

func raftLogs(first, last, term uint64) []*raft.Log {
	var logs []*raft.Log
	for i := first; i <= last; i++ {
		logs = append(logs, raftLog(i, term))
	}
	return logs
}

// expectRaftLog checks every field of the log at want.Index.
func expectRaftLog(s raft.LogStore, want *raft.Log) {
	GinkgoHelper()
	var got raft.Log
	Expect(s.GetLog(want.Index, &got)).To(Succeed())
	Expect(got.Index).To(Equal(want.Index))
	Expect(got.Term).To(Equal(want.Term))
	Expect(got.Type).To(Equal(want.Type))
	Expect(got.Data).To(Equal(want.Data))
	Expect(got.Extensions).To(Equal(want.Extensions))
	Expect(got.AppendedAt.Equal(want.AppendedAt)).To(BeTrue(), "AppendedAt %v, want %v", got.AppendedAt, want.AppendedAt)
}

func expectRaftRange(s raft.LogStore, first, last uint64) {
	GinkgoHelper()
	Expect(s.FirstIndex()).To(Equal(first), "FirstIndex")
	Expect(s.LastIndex()).To(Equal(last), "LastIndex")
}

func expectNoRaftLog(s raft.LogStore, index uint64) {
	GinkgoHelper()
	var l raft.Log
	Expect(s.GetLog(index, &l)).To(MatchError(raft.ErrLogNotFound), "log %d", index)
}

// describeRaftStore is the contract of raft.LogStore and raft.StableStore,
// as hashicorp/raft relies on it.
func describeRaftStore(name string, open func() (raft.LogStore, raft.StableStore)) bool {
	return Describe(name, func() {
		var (
			logs   raft.LogStore
			stable raft.StableStore
		)
		BeforeEach(func() { logs, stable = open() })

		When("it is empty", func() {
			It("reports first and last index 0", func() {
				expectRaftRange(logs, 0, 0)
			})
			It("finds no log, with raft.ErrLogNotFound", func() {
				var l raft.Log
				err := logs.GetLog(1, &l)
				Expect(errors.Is(err, raft.ErrLogNotFound)).To(BeTrue(), "got %v", err)
			})
		})

		When("one log with every field set is stored", func() {
			var want *raft.Log
			BeforeEach(func() {
				want = raftLog(7, 3)
				want.Type = raft.LogConfiguration
			})
			JustBeforeEach(func() { Expect(logs.StoreLog(want)).To(Succeed()) })

			It("returns every field", func() { expectRaftLog(logs, want) })
			It("reports its index as first and last", func() { expectRaftRange(logs, 7, 7) })
			It("finds nothing beside it", func() {
				expectNoRaftLog(logs, 6)
				expectNoRaftLog(logs, 8)
			})
		})

		When("a log with only an index and a term is stored", func() {
			JustBeforeEach(func() { Expect(logs.StoreLog(&raft.Log{Index: 1, Term: 1})).To(Succeed()) })

			It("returns empty data and extensions and the zero time", func() {
				var got raft.Log
				Expect(logs.GetLog(1, &got)).To(Succeed())
				Expect(got.Term).To(Equal(uint64(1)))
				Expect(got.Type).To(Equal(raft.LogCommand))
				Expect(got.Data).To(BeEmpty())
				Expect(got.Extensions).To(BeEmpty())
				Expect(got.AppendedAt.IsZero()).To(BeTrue(), "AppendedAt %v", got.AppendedAt)
			})
		})

		When("a batch is stored", func() {
			JustBeforeEach(func() { Expect(logs.StoreLogs(raftLogs(1, 10, 2))).To(Succeed()) })

			It("returns each log", func() {
				for _, l := range raftLogs(1, 10, 2) {
					expectRaftLog(logs, l)
				}
			})
			It("reports the batch's range", func() { expectRaftRange(logs, 1, 10) })
		})

		When("an index is stored again", func() {
			JustBeforeEach(func() {
				Expect(logs.StoreLogs(raftLogs(1, 5, 1))).To(Succeed())
				Expect(logs.StoreLog(raftLog(5, 2))).To(Succeed())
			})

			It("returns the newer log", func() { expectRaftLog(logs, raftLog(5, 2)) })
			It("keeps the range", func() { expectRaftRange(logs, 1, 5) })
		})

		DescribeTable("DeleteRange of logs 1 to 10 deletes both ends of the range",
			func(min, max, first, last uint64) {
				Expect(logs.StoreLogs(raftLogs(1, 10, 1))).To(Succeed())
				Expect(logs.DeleteRange(min, max)).To(Succeed())
				expectRaftRange(logs, first, last)
				for i := uint64(1); i <= 10; i++ {
					if i >= min && i <= max {
						expectNoRaftLog(logs, i)
					} else {
						expectRaftLog(logs, raftLog(i, 1))
					}
				}
			},
			Entry("at the head, as compaction does", uint64(1), uint64(4), uint64(5), uint64(10)),
			Entry("at the tail, as conflict truncation does", uint64(7), uint64(10), uint64(1), uint64(6)),
			Entry("of the first log alone", uint64(1), uint64(1), uint64(2), uint64(10)),
			Entry("of the last log alone", uint64(10), uint64(10), uint64(1), uint64(9)),
			Entry("of every log", uint64(1), uint64(10), uint64(0), uint64(0)),
		)

		When("the tail is truncated and a new term appended", func() {
			JustBeforeEach(func() {
				Expect(logs.StoreLogs(raftLogs(1, 10, 1))).To(Succeed())
				Expect(logs.DeleteRange(6, 10)).To(Succeed())
				Expect(logs.StoreLogs(raftLogs(6, 8, 2))).To(Succeed())
			})

			It("holds the old head and the new tail", func() {
				expectRaftRange(logs, 1, 8)
				expectRaftLog(logs, raftLog(5, 1))
				expectRaftLog(logs, raftLog(6, 2))
				expectRaftLog(logs, raftLog(8, 2))
				expectNoRaftLog(logs, 9)
			})
		})

		When("thousands of logs are compacted", func() {
			JustBeforeEach(func() {
				Expect(logs.StoreLogs(raftLogs(1, 3000, 1))).To(Succeed())
				Expect(logs.DeleteRange(1, 2900)).To(Succeed())
			})

			It("deletes every one of them and nothing else", func() {
				expectRaftRange(logs, 2901, 3000)
				for i := uint64(1); i <= 2900; i++ {
					expectNoRaftLog(logs, i)
				}
				for i := uint64(2901); i <= 3000; i++ {
					expectRaftLog(logs, raftLog(i, 1))
				}
			})
		})

		When("stable keys are set", func() {
			JustBeforeEach(func() {
				Expect(stable.Set([]byte("LastVoteCand"), []byte("node-1"))).To(Succeed())
				Expect(stable.Set([]byte("other"), []byte("x"))).To(Succeed())
				Expect(stable.SetUint64([]byte("CurrentTerm"), 4)).To(Succeed())
				Expect(stable.SetUint64([]byte("CurrentTerm"), 1<<40+5)).To(Succeed())
			})

			It("Get returns what Set stored under each key", func() {
				Expect(stable.Get([]byte("LastVoteCand"))).To(Equal([]byte("node-1")))
				Expect(stable.Get([]byte("other"))).To(Equal([]byte("x")))
			})
			It("GetUint64 returns the last value SetUint64 stored", func() {
				Expect(stable.GetUint64([]byte("CurrentTerm"))).To(Equal(uint64(1<<40 + 5)))
			})
		})

		When("a stable key is set to an empty value", func() {
			JustBeforeEach(func() { Expect(stable.Set([]byte("empty"), []byte{})).To(Succeed()) })

			It("is found, not missing", func() {
				v, err := stable.Get([]byte("empty"))
				Expect(err).NotTo(HaveOccurred())
				Expect(v).To(BeEmpty())
			})
		})

		When("a stable key is missing", func() {
			// raft tells a missing key from a failure by this message alone.
			It(`Get fails with exactly "not found"`, func() {
				v, err := stable.Get([]byte("LastVoteCand"))
				Expect(err).To(HaveOccurred())
				Expect(err.Error()).To(Equal("not found"))
				Expect(v).To(BeEmpty())
			})
			It(`GetUint64 yields 0, and no error or exactly "not found"`, func() {
				v, err := stable.GetUint64([]byte("CurrentTerm"))
				Expect(v).To(BeZero())
				if err != nil {
					Expect(err.Error()).To(Equal("not found"))
				}
			})
		})
	})
}

var _ = Describe("RaftStore", func() {
	var (
		dir string
		s   *bolt.RaftStore
	)
	BeforeEach(func() {
		dir = filepath.Join(GinkgoT().TempDir(), "data")
		s = openRaftStore(dir)
	})

	When("the data directory is new", func() {
		It("creates it 0700 with raft.db and raft.wal 0600", func() {
			expectPerm(dir, 0o700)
			expectPerm(filepath.Join(dir, bolt.RaftFileName), 0o600)
			expectPerm(filepath.Join(dir, bolt.RaftWALFileName), 0o600)
		})
	})

	When("the directory and files were open to others", func() {
		JustBeforeEach(func() {
			Expect(s.Close()).To(Succeed())
			Expect(os.Chmod(dir, 0o755)).To(Succeed())
			Expect(os.Chmod(filepath.Join(dir, bolt.RaftFileName), 0o644)).To(Succeed())
			Expect(os.Chmod(filepath.Join(dir, bolt.RaftWALFileName), 0o644)).To(Succeed())
			s = openRaftStore(dir)
		})

		It("closes them to their owner", func() {
			expectPerm(dir, 0o700)
			expectPerm(filepath.Join(dir, bolt.RaftFileName), 0o600)
			expectPerm(filepath.Join(dir, bolt.RaftWALFileName), 0o600)
		})
	})

	When("it is closed and reopened", func() {
		JustBeforeEach(func() {
			Expect(s.StoreLogs(raftLogs(1, 20, 1))).To(Succeed())
			Expect(s.DeleteRange(1, 5)).To(Succeed())
			Expect(s.Set([]byte("LastVoteCand"), []byte("node-2"))).To(Succeed())
			Expect(s.SetUint64([]byte("CurrentTerm"), 9)).To(Succeed())
			Expect(s.Close()).To(Succeed())
			s = openRaftStore(dir)
		})

		It("keeps its logs and stable keys", func() {
			expectRaftRange(s, 6, 20)
			expectRaftLog(s, raftLog(6, 1))
			expectRaftLog(s, raftLog(20, 1))
			Expect(s.Get([]byte("LastVoteCand"))).To(Equal([]byte("node-2")))
			Expect(s.GetUint64([]byte("CurrentTerm"))).To(Equal(uint64(9)))
		})
	})

	When("its logs are in raft.db and their deletions only in raft.wal", func() {
		JustBeforeEach(func() {
			Expect(s.StoreLogs(raftLogs(1, 100, 1))).To(Succeed())
			Expect(s.Close()).To(Succeed()) // checkpointed into raft.db
			s = openRaftStoreWith(dir, noCheckpoints)
			Expect(s.DeleteRange(1, 40)).To(Succeed())
			Expect(s.DeleteRange(91, 100)).To(Succeed())
			Expect(s.DeleteRange(50, 60)).To(Succeed())
		})

		It("finds the ends and the logs between them through the deletions", func() {
			expectRaftRange(s, 41, 90)
			expectNoRaftLog(s, 40)
			expectNoRaftLog(s, 55)
			expectNoRaftLog(s, 91)
			expectRaftLog(s, raftLog(41, 1))
			expectRaftLog(s, raftLog(61, 1))
			expectRaftLog(s, raftLog(90, 1))
		})
		It("finds the ends again when a deletion reaches a gap", func() {
			Expect(s.DeleteRange(41, 49)).To(Succeed())
			expectRaftRange(s, 61, 90)
			Expect(s.DeleteRange(62, 95)).To(Succeed())
			expectRaftRange(s, 61, 61)
			Expect(s.DeleteRange(1, 1000)).To(Succeed())
			expectRaftRange(s, 0, 0)
			Expect(s.StoreLogs(raftLogs(500, 501, 2))).To(Succeed())
			expectRaftRange(s, 500, 501)
		})
	})

	When("it is killed with its last writes in raft.wal only", func() {
		var crashed string
		JustBeforeEach(func() {
			Expect(s.Close()).To(Succeed())
			s = openRaftStoreWith(dir, noCheckpoints)
			Expect(s.StoreLogs(raftLogs(1, 20, 1))).To(Succeed())
			Expect(s.DeleteRange(1, 5)).To(Succeed())
			Expect(s.DeleteRange(18, 20)).To(Succeed())
			Expect(s.StoreLogs(raftLogs(18, 25, 2))).To(Succeed())
			Expect(s.SetUint64([]byte("CurrentTerm"), 2)).To(Succeed())
			// The files of the open store, as kill -9 leaves them.
			crashed = GinkgoT().TempDir()
			for _, f := range []string{bolt.RaftFileName, bolt.RaftWALFileName} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				Expect(err).NotTo(HaveOccurred())
				Expect(os.WriteFile(filepath.Join(crashed, f), b, 0o600)).To(Succeed())
			}
		})

		It("replays them when it opens", func() {
			c := openRaftStore(crashed)
			expectRaftRange(c, 6, 25)
			expectRaftLog(c, raftLog(6, 1))
			expectRaftLog(c, raftLog(17, 1))
			expectRaftLog(c, raftLog(18, 2))
			expectRaftLog(c, raftLog(25, 2))
			Expect(c.GetUint64([]byte("CurrentTerm"))).To(Equal(uint64(2)))
		})

		It("forgets them with raft.db: a raft.wal without its raft.db is discarded", func() {
			Expect(os.Remove(filepath.Join(crashed, bolt.RaftFileName))).To(Succeed())
			c := openRaftStore(crashed)
			expectRaftRange(c, 0, 0)
			_, err := c.GetUint64([]byte("CurrentTerm"))
			Expect(err).To(MatchError(bolt.ErrKeyNotFound))
		})
	})

	When("raft.db was written before raft.db had a log beside it", func() {
		JustBeforeEach(func() {
			Expect(s.Close()).To(Succeed())
			dir = GinkgoT().TempDir()
			// The layout of the first raft.db: the two buckets, no meta.
			writeBolt(filepath.Join(dir, bolt.RaftFileName), map[string]map[string]string{
				"logs":   {string(binary.BigEndian.AppendUint64(nil, 3)): string([]byte{1, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})},
				"stable": {"CurrentTerm": string(binary.BigEndian.AppendUint64(nil, 7))},
			})
			s = openRaftStore(dir)
		})

		It("is adopted with its logs and keys", func() {
			expectRaftRange(s, 3, 3)
			var l raft.Log
			Expect(s.GetLog(3, &l)).To(Succeed())
			Expect(l.Term).To(Equal(uint64(1)))
			Expect(s.GetUint64([]byte("CurrentTerm"))).To(Equal(uint64(7)))
			Expect(s.StoreLog(raftLog(4, 2))).To(Succeed())
			expectRaftRange(s, 3, 4)
		})
	})

	When("raft.db is not a raft store", func() {
		DescribeTable("it is refused, and left as it was",
			func(buckets map[string]map[string]string, message string) {
				Expect(s.Close()).To(Succeed())
				other := GinkgoT().TempDir()
				path := filepath.Join(other, bolt.RaftFileName)
				writeBolt(path, buckets)
				before := fingerprintOf(path)
				_, err := bolt.OpenRaftStore(other)
				Expect(errors.Is(err, bolt.ErrNotWarren)).To(BeTrue(), "%v", err)
				Expect(err).To(MatchError(ContainSubstring(message)))
				Expect(fingerprintOf(path)).To(Equal(before))
			},
			Entry("a BoltDB file of another program", map[string]map[string]string{"users": {"alice": "1"}}, `without Warren's "meta" bucket`),
			Entry("a warren.db", map[string]map[string]string{"meta": {"format": "warren", "schema": "1"}}, `has format "warren", not "warren-raft"`),
		)
	})

	When("another opener comes while it is open", func() {
		It("fails soon with ErrRaftLocked, naming the directory and the fix", func() {
			start := time.Now()
			other, err := bolt.OpenRaftStore(dir)
			if other != nil {
				DeferCleanup(other.Close)
			}
			Expect(errors.Is(err, bolt.ErrRaftLocked)).To(BeTrue(), "got %v", err)
			Expect(err.Error()).To(And(ContainSubstring(dir), ContainSubstring("stop it first")))
			Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second))
		})
	})

	When("a stable key is missing", func() {
		It("Get and GetUint64 fail with ErrKeyNotFound", func() {
			_, err := s.Get([]byte("nope"))
			Expect(err).To(MatchError(bolt.ErrKeyNotFound))
			_, err = s.GetUint64([]byte("nope"))
			Expect(err).To(MatchError(bolt.ErrKeyNotFound))
		})
	})

	When("a stable key holds something other than a uint64", func() {
		JustBeforeEach(func() { Expect(s.Set([]byte("CurrentTerm"), []byte("abc"))).To(Succeed()) })

		It("GetUint64 fails, and not as a missing key", func() {
			_, err := s.GetUint64([]byte("CurrentTerm"))
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).NotTo(Equal("not found"))
			Expect(err.Error()).To(ContainSubstring("3 bytes"))
		})
	})

	When("a caller changes what it read", func() {
		It("changes nothing in the store", func() {
			want := raftLog(1, 1)
			Expect(s.StoreLogs(append([]*raft.Log{want}, raftLogs(2, 100, 1)...))).To(Succeed())
			Expect(s.Set([]byte("k"), []byte("value"))).To(Succeed())
			// Big enough that neither bucket is inline: bbolt copies an
			// inline bucket's values out of the mapping, which would hide
			// a missing copy.
			Expect(s.Set([]byte("filler"), make([]byte, 8<<10))).To(Succeed())
			// Writing into bbolt's read-only mapping would crash the
			// process; writing into a shared slice would show below.
			var got raft.Log
			Expect(s.GetLog(1, &got)).To(Succeed())
			copy(got.Data, "XXXX")
			copy(got.Extensions, "XXXX")
			v, err := s.Get([]byte("k"))
			Expect(err).NotTo(HaveOccurred())
			copy(v, "XXXX")
			expectRaftLog(s, want)
			Expect(s.Get([]byte("k"))).To(Equal([]byte("value")))
		})
	})

	When("it is closed", func() {
		JustBeforeEach(func() { Expect(s.Close()).To(Succeed()) })

		It("fails every call with an error", func() {
			var l raft.Log
			_, err := s.FirstIndex()
			Expect(err).To(HaveOccurred())
			Expect(s.StoreLog(raftLog(1, 1))).NotTo(Succeed())
			err = s.GetLog(1, &l)
			Expect(err).To(HaveOccurred())
			Expect(errors.Is(err, raft.ErrLogNotFound)).To(BeFalse())
			_, err = s.Get([]byte("k"))
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).NotTo(Equal("not found"))
		})
	})

	DescribeTable("refuses a log value it cannot read, saying why",
		func(value []byte, why string) {
			Expect(s.Close()).To(Succeed())
			writeRaftValue(filepath.Join(dir, bolt.RaftFileName), 1, value)
			s = openRaftStore(dir)
			var l raft.Log
			err := s.GetLog(1, &l)
			Expect(err).To(HaveOccurred())
			Expect(errors.Is(err, raft.ErrLogNotFound)).To(BeFalse())
			Expect(err.Error()).To(ContainSubstring(why))
		},
		Entry("of an unknown encoding version", []byte{99, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "version 99 is unknown"),
		Entry("of version 0", []byte{0}, "version 0 is unknown"),
		Entry("that is empty", []byte{}, "empty"),
		Entry("that is truncated", []byte{1, 1, 1, 0, 0, 0}, "truncated"),
		Entry("whose data is cut short", []byte{1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 'a'}, "truncated"),
		Entry("with bytes after the last field", []byte{1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}, "after the last field"),
		Entry("of another index", []byte{1, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "holds index 2"),
	)
})

// writeRaftValue puts a raw value under a log index in a closed raft.db,
// as a newer binary or a damaged disk might have left it.
func writeRaftValue(path string, index uint64, value []byte) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	Expect(err).NotTo(HaveOccurred())
	Expect(db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("logs")).Put(binary.BigEndian.AppendUint64(nil, index), value)
	})).To(Succeed())
	Expect(db.Close()).To(Succeed())
}
