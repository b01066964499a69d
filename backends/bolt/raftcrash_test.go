package bolt_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/bolt"
)

const (
	raftCrashChildEnv = "WARREN_RAFT_CRASH_CHILD_DIR"
	raftCrashKills    = 30
	// raftTrailing is how far behind the commit index compaction stops,
	// as raft keeps TrailingLogs.
	raftTrailing = 32
	// raftUncommitted is how far behind the last log the child's commit
	// index stays: the tail a truncation may cut.
	raftUncommitted = 64
)

var (
	raftTermKey = []byte("CurrentTerm")
	raftVoteKey = []byte("LastVoteCand")
)

// raftCrashData is the data of the log at index in term: the parent knows
// what an acknowledged log must hold. Sizes vary from 200 bytes to 1 KB so
// that the frequent-checkpoint runs checkpoint every few dozen logs.
func raftCrashData(index, term uint64) []byte {
	d := fmt.Appendf(nil, "%d/%d/", index, term)
	return append(d, bytes.Repeat([]byte{byte('a' + index%26)}, 200+int(index%800))...)
}

func raftCrashLogs(from, to, term uint64) []*raft.Log {
	var logs []*raft.Log
	for i := from; i <= to; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: raftCrashData(i, term)})
	}
	return logs
}

// raftCrashChild writes to the raft store as hashicorp/raft does until it
// is killed: one goroutine, raft's main loop, appends batches, truncates
// the uncommitted tail now and then and moves to new terms (term and vote
// in the stable store); another, raft's snapshot loop, compacts the head.
// Each operation is printed before it starts ("do") and once it is
// acknowledged ("ok"), so that the parent knows which one may have been
// in flight.
func raftCrashChild(dir string) int {
	run, _ := strconv.Atoi(os.Getenv(crashRunEnv))
	// Every other run checkpoints every few appends, so that kills also
	// land in the middle of checkpoints and log resets.
	var opts *bolt.Options
	if run%2 == 0 {
		opts = &bolt.Options{CheckpointBytes: 32 << 10}
	}
	s, err := bolt.OpenRaftStoreWith(dir, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "raft crash child:", err)
		return 1
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "raft crash child:", err)
		os.Exit(1)
	}
	last, err := s.LastIndex()
	if err != nil {
		fail(err)
	}
	term, err := s.GetUint64(raftTermKey)
	if err != nil && !errors.Is(err, bolt.ErrKeyNotFound) {
		fail(err)
	}
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		_, _ = fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	say("ready")
	var commit atomic.Uint64
	commit.Store(last)
	deadline := time.Now().Add(crashChildLife)
	var wg sync.WaitGroup
	wg.Go(func() {
		r := rand.New(rand.NewPCG(uint64(run), 0x2AF7))
		for time.Now().Before(deadline) {
			var err error
			switch p := r.IntN(100); {
			case p < 5 || term == 0:
				term++
				say("a do term %d", term)
				err = s.SetUint64(raftTermKey, term)
			case p < 10:
				say("a do vote %d", term)
				err = s.Set(raftVoteKey, fmt.Appendf(nil, "node-%d", term))
			case p < 20 && last > commit.Load():
				from := last - uint64(r.IntN(int(min(20, last-commit.Load()))))
				say("a do trunc %d %d", from, last)
				err = s.DeleteRange(from, last)
				last = from - 1
			default:
				n := 1 + uint64(r.IntN(16))
				say("a do logs %d %d %d", last+1, last+n, term)
				err = s.StoreLogs(raftCrashLogs(last+1, last+n, term))
				last += n
				if last > raftUncommitted && last-raftUncommitted > commit.Load() {
					commit.Store(last - raftUncommitted)
				}
			}
			if err != nil {
				fail(err)
			}
			say("a ok")
		}
	})
	wg.Go(func() {
		for time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
			first, err := s.FirstIndex()
			if err != nil {
				fail(err)
			}
			if c := commit.Load(); c > raftTrailing && c-raftTrailing > first+16 {
				say("b do compact %d", c-raftTrailing)
				if err := s.DeleteRange(first, c-raftTrailing); err != nil {
					fail(err)
				}
				say("b ok")
			}
		}
	})
	wg.Wait()
	return 0
}

// raftState is what a raft store holds: each log's term, and the stable
// keys.
type raftState struct {
	logs       map[uint64]uint64
	term, vote uint64
}

func (st raftState) clone() raftState {
	st.logs = maps.Clone(st.logs)
	return st
}

// apply does one of the child's operations to st.
func (st *raftState) apply(op []string) {
	n := func(i int) uint64 {
		v, err := strconv.ParseUint(op[i], 10, 64)
		Expect(err).NotTo(HaveOccurred())
		return v
	}
	switch op[0] {
	case "term":
		st.term = n(1)
	case "vote":
		st.vote = n(1)
	case "trunc":
		for i := n(1); i <= n(2); i++ {
			delete(st.logs, i)
		}
	case "logs":
		for i := n(1); i <= n(2); i++ {
			st.logs[i] = n(3)
		}
	default:
		Fail("unknown operation " + strings.Join(op, " "))
	}
}

// raftRun is what a child said before it was killed.
type raftRun struct {
	ops      [][]string // the main loop's operations, in order
	inFlight bool       // whether the last of them was never acknowledged
	// compactAcked and compactTried are the highest index an acknowledged
	// compaction, and any compaction begun, deleted up to.
	compactAcked, compactTried uint64
	compactions                uint64 // acknowledged
}

func runAndKillRaft(dir string, run int, delay time.Duration) raftRun {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), raftCrashChildEnv+"="+dir, fmt.Sprintf("%s=%d", crashRunEnv, run))
	cmd.Stderr = GinkgoWriter
	stdout, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	Expect(cmd.Start()).To(Succeed())
	ready := make(chan struct{})
	result := make(chan raftRun, 1)
	go func() {
		defer GinkgoRecover()
		var rr raftRun
		var compacting uint64
		r := bufio.NewReader(stdout)
		if line, err := r.ReadString('\n'); err == nil && line == "ready\n" {
			close(ready)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break // a partial last line: its operation may be in flight
			}
			f := strings.Fields(line)
			switch {
			case f[0] == "a" && f[1] == "do":
				rr.ops = append(rr.ops, f[2:])
				rr.inFlight = true
			case f[0] == "a" && f[1] == "ok":
				rr.inFlight = false
			case f[0] == "b" && f[1] == "do":
				compacting, err = strconv.ParseUint(f[3], 10, 64)
				Expect(err).NotTo(HaveOccurred())
				rr.compactTried = max(rr.compactTried, compacting)
			case f[0] == "b" && f[1] == "ok":
				rr.compactAcked = max(rr.compactAcked, compacting)
				rr.compactions++
			}
		}
		result <- rr
	}()
	Eventually(ready, "30s").Should(BeClosed(), "the child did not open the store")
	time.Sleep(delay)
	Expect(cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
	rr := <-result
	err = cmd.Wait()
	Expect(err).To(MatchError(ContainSubstring("killed")), "the child must still be writing when killed")
	return rr
}

// readRaftState reads everything the store holds, checking each log whole
// and that the logs from FirstIndex to LastIndex are all there.
func readRaftState(s *bolt.RaftStore) raftState {
	GinkgoHelper()
	st := raftState{logs: map[uint64]uint64{}}
	first, err := s.FirstIndex()
	Expect(err).NotTo(HaveOccurred())
	last, err := s.LastIndex()
	Expect(err).NotTo(HaveOccurred())
	if first > 0 {
		expectNoRaftLog(s, first-1)
		expectNoRaftLog(s, last+1)
		for i := first; i <= last; i++ {
			var l raft.Log
			Expect(s.GetLog(i, &l)).To(Succeed(), "log %d, between FirstIndex %d and LastIndex %d", i, first, last)
			Expect(l.Index).To(Equal(i))
			Expect(l.Data).To(Equal(raftCrashData(i, l.Term)), "log %d is whole", i)
			st.logs[i] = l.Term
		}
	} else {
		Expect(last).To(BeZero())
	}
	if st.term, err = s.GetUint64(raftTermKey); errors.Is(err, bolt.ErrKeyNotFound) {
		err = nil
	}
	Expect(err).NotTo(HaveOccurred())
	vote, err := s.Get(raftVoteKey)
	if !errors.Is(err, bolt.ErrKeyNotFound) {
		Expect(err).NotTo(HaveOccurred())
		_, err = fmt.Sscanf(string(vote), "node-%d", &st.vote)
		Expect(err).NotTo(HaveOccurred())
	}
	return st
}

// raftMismatch says how got differs from want, a state the store may be
// in after compactions up to between acked and tried: "" if it does not.
func raftMismatch(got, want raftState, acked, tried uint64) string {
	if got.term != want.term || got.vote != want.vote {
		return fmt.Sprintf("term %d vote %d, want term %d vote %d", got.term, got.vote, want.term, want.vote)
	}
	for i, term := range got.logs {
		if w, ok := want.logs[i]; !ok || w != term || i <= acked {
			return fmt.Sprintf("log %d has term %d; want term %d (present: %v; compacted up to %d)", i, term, w, ok, acked)
		}
	}
	for i, term := range want.logs {
		if _, ok := got.logs[i]; !ok && i > tried {
			return fmt.Sprintf("log %d of term %d is missing (compactions went up to %d at most)", i, term, tried)
		}
	}
	return ""
}

var _ = Describe("raft.db after kill -9", Label("slow"), func() {
	It("opens cleanly and holds every acknowledged write, whole", func() {
		r := rand.New(rand.NewPCG(uint64(GinkgoRandomSeed()), 0x2AF7))
		dir := GinkgoT().TempDir()
		base := raftState{logs: map[uint64]uint64{}}
		ops, inFlight := 0, 0
		kinds := map[string]int{}
		var compactions uint64
		for run := range raftCrashKills {
			delay := time.Duration(20+r.IntN(180)) * time.Millisecond
			rr := runAndKillRaft(dir, run, delay)
			ops += len(rr.ops)
			for _, op := range rr.ops {
				kinds[op[0]]++
			}
			compactions += rr.compactions

			checkPages(filepath.Join(dir, bolt.RaftFileName))
			s, err := bolt.OpenRaftStore(dir)
			Expect(err).NotTo(HaveOccurred(), "run %d (kill after %v): reopen", run, delay)
			got := readRaftState(s)
			Expect(s.Close()).To(Succeed())

			// The acknowledged operations happened; the one in flight
			// may have.
			want := base.clone()
			acked := rr.ops
			if rr.inFlight {
				acked = acked[:len(acked)-1]
			}
			for _, op := range acked {
				want.apply(op)
			}
			ackedTo, tried := rr.compactAcked, max(rr.compactAcked, rr.compactTried)
			why := raftMismatch(got, want, ackedTo, tried)
			if why != "" && rr.inFlight {
				inFlight++
				want.apply(rr.ops[len(rr.ops)-1])
				if w := raftMismatch(got, want, ackedTo, tried); w == "" {
					why = ""
				} else {
					why += "; or, with the operation in flight " + strings.Join(rr.ops[len(rr.ops)-1], " ") + ": " + w
				}
			}
			Expect(why).To(BeEmpty(), "run %d (kill after %v), %d operations", run, delay, len(rr.ops))
			base = got
		}
		// Nothing moves once the crashes stop.
		s, err := bolt.OpenRaftStore(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(raftMismatch(readRaftState(s), base, 0, 0)).To(BeEmpty())
		Expect(s.Close()).To(Succeed())
		checkPages(filepath.Join(dir, bolt.RaftFileName))
		AddReportEntry("raft operations", fmt.Sprintf("%d over %d kills (%d appends, %d truncations, %d terms, %d votes; %d compactions), %d found applied while unacknowledged",
			ops, raftCrashKills, kinds["logs"], kinds["trunc"], kinds["term"], kinds["vote"], compactions, inFlight))
		Expect(ops).To(BeNumerically(">", raftCrashKills), "the children must have written")
		Expect(kinds["trunc"]).To(BeNumerically(">", 0), "the children must have truncated")
		Expect(compactions).To(BeNumerically(">", 0), "the children must have compacted")
		Expect(len(base.logs)).To(BeNumerically(">", 0))
	})
})
