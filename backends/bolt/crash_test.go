package bolt_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	bbolt "go.etcd.io/bbolt"

	"github.com/warren-orchestrator/warren/backends/bolt"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

const (
	crashChildEnv = "WARREN_CRASH_CHILD_DIR"
	crashRunEnv   = "WARREN_CRASH_CHILD_RUN"
	crashKills    = 50
	txContainers  = 3
	// The child stops by itself after this long, should its parent be gone.
	crashChildLife = 20 * time.Second
)

// Records are derived from their IDs, so the parent knows what an
// acknowledged record must contain.
func crashService(id string) *types.Service { return typestest.LargeService(id, id, 2048) }

func crashContainer(svcID string, i int) *types.Container {
	return typestest.Container(fmt.Sprintf("%s-c%d", svcID, i), svcID, fmt.Sprintf("node-%d", i))
}

// crashChild writes until it is killed: four goroutines of single upserts
// (the group-commit path) and one of multi-record transactions, printing
// each write once it is acknowledged.
func crashChild(dir string) int {
	run := os.Getenv(crashRunEnv)
	// Every other run checkpoints every few writes, so that kills also
	// land in the middle of checkpoints and log resets.
	var opts *bolt.Options
	if n, _ := strconv.Atoi(run); n%2 == 0 {
		opts = &bolt.Options{CheckpointBytes: 32 << 10}
	}
	kv, err := bolt.OpenKV(dir, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 1
	}
	s := state.New(kv)
	_, _ = os.Stdout.WriteString("ready\n")
	var out sync.Mutex
	ack := func(kind, id string) {
		out.Lock()
		defer out.Unlock()
		_, _ = os.Stdout.WriteString("ack " + kind + " " + id + "\n")
	}
	deadline := time.Now().Add(crashChildLife)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("s-%s-%d-%d", run, g, i)
				if err := s.UpdateService(crashService(id)); err != nil {
					fmt.Fprintln(os.Stderr, "crash child:", err)
					os.Exit(1)
				}
				ack("svc", id)
			}
		})
	}
	wg.Go(func() {
		for i := 0; time.Now().Before(deadline); i++ {
			id := fmt.Sprintf("t-%s-%d", run, i)
			err := s.Update(func(tx state.Tx) error {
				if err := tx.UpdateService(crashService(id)); err != nil {
					return err
				}
				for c := range txContainers {
					if err := tx.UpdateContainer(crashContainer(id, c)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				fmt.Fprintln(os.Stderr, "crash child:", err)
				os.Exit(1)
			}
			ack("tx", id)
		}
	})
	wg.Wait()
	return 0
}

// runAndKill starts a writer child, kills it with SIGKILL delay after it
// opened the store, and returns the writes it acknowledged.
func runAndKill(dir string, run int, delay time.Duration) (svcs, txs []string) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s=%d", crashRunEnv, run))
	cmd.Stderr = GinkgoWriter
	stdout, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	Expect(cmd.Start()).To(Succeed())
	lines := make(chan []string)
	ready := make(chan struct{})
	go func() {
		var svcs, txs []string
		r := bufio.NewReader(stdout)
		if line, err := r.ReadString('\n'); err == nil && line == "ready\n" {
			close(ready)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break // a partial last line was never acknowledged in full
			}
			f := strings.Fields(line)
			if f[1] == "svc" {
				svcs = append(svcs, f[2])
			} else {
				txs = append(txs, f[2])
			}
		}
		lines <- svcs
		lines <- txs
	}()
	Eventually(ready, "30s").Should(BeClosed(), "the child did not open the store")
	time.Sleep(delay)
	Expect(cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
	svcs, txs = <-lines, <-lines
	err = cmd.Wait()
	Expect(err).To(MatchError(ContainSubstring("killed")), "the child must still be writing when killed")
	return svcs, txs
}

var _ = Describe("warren.db after kill -9", Label("slow"), func() {
	It("opens cleanly and holds every acknowledged write, whole", func() {
		seed := GinkgoRandomSeed()
		r := rand.New(rand.NewPCG(uint64(seed), 0xC4A5))
		dir := GinkgoT().TempDir()
		var ackedSvcs, ackedTxs []string
		for run := range crashKills {
			delay := time.Duration(20+r.IntN(180)) * time.Millisecond
			svcs, txs := runAndKill(dir, run, delay)
			ackedSvcs = append(ackedSvcs, svcs...)
			ackedTxs = append(ackedTxs, txs...)

			checkPages(bolt.Path(dir))
			s, err := bolt.Open(dir)
			Expect(err).NotTo(HaveOccurred(), "run %d (kill after %v): reopen", run, delay)
			checkAcked(s, svcs, txs)
			Expect(s.Close()).To(Succeed())
		}
		// Writes of earlier runs must survive the later crashes too.
		s, err := bolt.Open(dir)
		Expect(err).NotTo(HaveOccurred())
		checkAcked(s, ackedSvcs, ackedTxs)
		checkAtomic(s)
		Expect(s.Close()).To(Succeed())
		checkPages(bolt.Path(dir))
		AddReportEntry("acknowledged writes", fmt.Sprintf("%d single upserts, %d transactions over %d kills", len(ackedSvcs), len(ackedTxs), crashKills))
		Expect(len(ackedSvcs)).To(BeNumerically(">", crashKills), "the children must have written")
	})
})

// checkAcked: every acknowledged write is there, whole.
func checkAcked(s state.Store, svcs, txs []string) {
	GinkgoHelper()
	for _, id := range svcs {
		got, err := s.GetServiceByName(id)
		Expect(err).NotTo(HaveOccurred(), "acknowledged service %s", id)
		Expect(got).To(Equal(stamp(crashService(id))), "service %s", id)
	}
	for _, id := range txs {
		cs, err := s.ListContainersByService(id)
		Expect(err).NotTo(HaveOccurred())
		Expect(cs).To(HaveLen(txContainers), "acknowledged transaction %s", id)
		for i, c := range cs {
			Expect(c).To(Equal(stampContainer(crashContainer(id, i))))
		}
	}
}

// checkPages runs BoltDB's own consistency check on the file.
func checkPages(path string) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	Expect(err).NotTo(HaveOccurred())
	defer db.Close()
	Expect(db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})).To(Succeed())
}

// checkAtomic: every transaction's service, acknowledged or not, is there
// with all of its containers or not at all.
func checkAtomic(s state.Store) {
	ss, err := s.ListServices()
	Expect(err).NotTo(HaveOccurred())
	for _, svc := range ss {
		if strings.HasPrefix(svc.ID, "t-") {
			cs, err := s.ListContainersByService(svc.ID)
			Expect(err).NotTo(HaveOccurred())
			Expect(cs).To(HaveLen(txContainers), "transaction %s is torn", svc.ID)
		}
	}
	cs, err := s.ListContainers()
	Expect(err).NotTo(HaveOccurred())
	for _, c := range cs {
		_, err := s.GetService(c.ServiceID)
		Expect(err).NotTo(HaveOccurred(), "container %s without its service", c.ID)
	}
}

func stamp(s *types.Service) *types.Service {
	s.SchemaVersion = types.SchemaVersion
	return s
}

func stampContainer(c *types.Container) *types.Container {
	c.SchemaVersion = types.SchemaVersion
	return c
}
