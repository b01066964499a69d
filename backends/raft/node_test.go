package raft_test

import (
	"bytes"
	"fmt"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/bolt"
	"github.com/warren-orchestrator/warren/backends/pki"
	wraft "github.com/warren-orchestrator/warren/backends/raft"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

// cluster is n managers on loopback, each with its own data dir and port,
// talking raft over mutual TLS.
type cluster struct {
	ca    *pki.CA
	nodes []*wraft.Node
	cfgs  []wraft.Config
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().String()
}

func newCluster(n int, snapshotThreshold uint64) *cluster {
	ca, err := pki.NewCA("test-cluster", time.Now())
	Expect(err).NotTo(HaveOccurred())
	c := &cluster{ca: ca}
	for i := range n {
		cert, err := ca.Issue(pki.Request{CommonName: fmt.Sprintf("m%d", i+1), Role: "manager", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}, time.Now())
		Expect(err).NotTo(HaveOccurred())
		c.cfgs = append(c.cfgs, wraft.Config{
			ID:                fmt.Sprintf("m%d", i+1),
			DataDir:           GinkgoT().TempDir(),
			Bind:              freeAddr(),
			ServerTLS:         pki.ServerConfig(ca.Pool(), cert, pki.RequireRole("manager")),
			ClientTLS:         pki.ClientConfig(ca.Pool(), cert, pki.RequireRole("manager")),
			SnapshotThreshold: snapshotThreshold,
		})
		c.nodes = append(c.nodes, nil)
		c.start(i)
	}
	DeferCleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	Expect(c.nodes[0].Bootstrap()).To(Succeed())
	Eventually(c.nodes[0].IsLeader, 5*time.Second, 10*time.Millisecond).Should(BeTrue())
	for i := 1; i < n; i++ {
		Expect(c.nodes[0].AddVoter(c.cfgs[i].ID, c.nodes[i].Addr())).To(Succeed())
	}
	// A new member learns who leads from the leader's next message, which
	// may come after AddVoter returns.
	for _, n := range c.nodes {
		Eventually(func() string { id, _ := n.Leader(); return id }, 5*time.Second, 10*time.Millisecond).Should(Equal("m1"))
	}
	return c
}

func (c *cluster) start(i int) {
	n, err := wraft.Open(c.cfgs[i])
	Expect(err).NotTo(HaveOccurred())
	c.nodes[i] = n
}

func (c *cluster) stop(i int) {
	if c.nodes[i] != nil {
		_ = c.nodes[i].Close()
		c.nodes[i] = nil
	}
}

// leader waits for a leader among the running managers.
func (c *cluster) leader() int {
	idx := -1
	Eventually(func() bool {
		for i, n := range c.nodes {
			if n != nil && n.IsLeader() {
				idx = i
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond).Should(BeTrue(), "no leader")
	return idx
}

func secret(i int) fsm.Command {
	s := typestest.Secret(fmt.Sprintf("k%d", i), fmt.Sprintf("secret-%d", i))
	return &fsm.CreateSecret{Secret: s}
}

// secrets counts the secrets a manager has applied.
func secrets(n *wraft.Node) func() int {
	return func() int {
		l, err := n.Store().ListSecrets()
		Expect(err).NotTo(HaveOccurred())
		return len(l)
	}
}

var _ = Describe("Node", Label("integ"), func() {
	It("replicates writes to every manager over mutual TLS", func() {
		c := newCluster(3, 0)
		members, err := c.nodes[0].Members()
		Expect(err).NotTo(HaveOccurred())
		Expect(members).To(HaveLen(3))
		for i := range 20 {
			_, err := c.nodes[0].Apply(secret(i))
			Expect(err).NotTo(HaveOccurred())
		}
		for _, n := range c.nodes {
			Eventually(secrets(n), 5*time.Second, 10*time.Millisecond).Should(Equal(20))
		}
	})

	It("backs up the state as of an applied index, and the copy restores", func() {
		c := newCluster(1, 0)
		for i := range 3 {
			_, err := c.nodes[0].Apply(secret(i))
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(c.nodes[0].Barrier()).To(Succeed())
		var buf bytes.Buffer
		index, err := c.nodes[0].Backup(&buf)
		Expect(err).NotTo(HaveOccurred())
		Expect(index).To(Equal(c.nodes[0].Applied()))

		kv, err := bolt.OpenKV(GinkgoT().TempDir(), nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(kv.Close)
		Expect(kv.Restore(&buf)).To(Succeed())
		l, err := state.New(kv).ListSecrets()
		Expect(err).NotTo(HaveOccurred())
		Expect(l).To(HaveLen(3))
	})

	It("answers a command's own error from the state machine", func() {
		c := newCluster(1, 0)
		_, err := c.nodes[0].Apply(secret(1))
		Expect(err).NotTo(HaveOccurred())
		_, err = c.nodes[0].Apply(secret(1))
		Expect(err).To(MatchError(fsm.ErrExists))
	})

	It("refuses a write on a follower, naming the leader", func() {
		c := newCluster(3, 0)
		_, err := c.nodes[1].Apply(secret(1))
		Expect(err).To(MatchError(wraft.ErrNotLeader))
		Expect(err.Error()).To(ContainSubstring("m1"))
	})

	It("fails over when the leader dies and loses no acknowledged write", func() {
		c := newCluster(3, 0)
		acked := 0
		for i := range 10 {
			_, err := c.nodes[0].Apply(secret(i))
			Expect(err).NotTo(HaveOccurred())
			acked++
		}
		start := time.Now()
		c.stop(0)
		l := c.leader()
		Expect(l).NotTo(Equal(0))
		Eventually(func() error {
			_, err := c.nodes[l].Apply(secret(100))
			return err
		}, 10*time.Second, 20*time.Millisecond).Should(Succeed())
		GinkgoWriter.Printf("failover to the first acknowledged write: %s\n", time.Since(start))
		Expect(secrets(c.nodes[l])()).To(Equal(acked + 1))

		// The old leader comes back and catches up from its own data dir.
		c.start(0)
		Eventually(secrets(c.nodes[0]), 10*time.Second, 20*time.Millisecond).Should(Equal(acked + 1))
	})

	It("fails writes without a quorum instead of hanging", func() {
		c := newCluster(3, 0)
		c.stop(1)
		c.stop(2)
		// The leader steps down once its lease runs out without a quorum;
		// the write in flight then fails. Waiting on it in a goroutine
		// turns a hang into a failed spec rather than a stuck suite.
		result := make(chan error, 1)
		go func() {
			_, err := c.nodes[0].Apply(secret(1))
			result <- err
		}()
		var err error
		Eventually(result, 10*time.Second).Should(Receive(&err))
		Expect(err).To(Or(MatchError(wraft.ErrNotLeader), MatchError(wraft.ErrNoQuorum), MatchError(wraft.ErrOutcomeUnknown)))
	})

	It("brings a lone survivor back as a cluster of one with its state (force new cluster)", func() {
		c := newCluster(3, 4)
		for i := range 10 {
			_, err := c.nodes[0].Apply(secret(i))
			Expect(err).NotTo(HaveOccurred())
		}
		for _, n := range c.nodes {
			Eventually(secrets(n), 5*time.Second, 10*time.Millisecond).Should(Equal(10))
		}
		c.stop(0)
		c.stop(1)
		c.stop(2)
		c.cfgs[2].ForceNewCluster = true
		c.start(2)
		n := c.nodes[2]
		Eventually(n.IsLeader, 5*time.Second, 10*time.Millisecond).Should(BeTrue())
		members, err := n.Members()
		Expect(err).NotTo(HaveOccurred())
		Expect(members).To(HaveLen(1))
		Expect(members[0].ID).To(Equal("m3"))
		Expect(secrets(n)()).To(Equal(10))
		_, err = n.Apply(secret(10))
		Expect(err).NotTo(HaveOccurred())
		Expect(secrets(n)()).To(Equal(11))
	})

	It("catches a lagging manager up by snapshot and restarts from its own files", func() {
		c := newCluster(3, 16)
		c.stop(2)
		for i := range 100 {
			_, err := c.nodes[0].Apply(secret(i))
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(c.nodes[0].Snapshot()).To(Succeed())
		c.start(2) // its log is behind the leader's compacted log
		Eventually(secrets(c.nodes[2]), 15*time.Second, 20*time.Millisecond).Should(Equal(100))

		applied := c.nodes[1].Applied()
		c.stop(1)
		c.start(1)
		Expect(c.nodes[1].Applied()).To(BeNumerically(">=", applied), "warren.db keeps what it applied")
		Expect(secrets(c.nodes[1])()).To(BeNumerically(">=", 100))
		_, err := c.nodes[1].Store().GetSecretByName("secret-99")
		Expect(err).NotTo(HaveOccurred())
		_, err = c.nodes[1].Store().GetSecretByName("no-such")
		Expect(err).To(MatchError(state.ErrNotFound))
	})
})
