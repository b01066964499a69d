package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	wctd "github.com/warren-orchestrator/warren/backends/containerd"
	"github.com/warren-orchestrator/warren/backends/containerd/ctdtest"
	"github.com/warren-orchestrator/warren/backends/containerd/testimage"
	"github.com/warren-orchestrator/warren/e2e/proc"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// A one-node cluster (manager and worker) as `warren cluster init` makes
// it, running its tasks in a real containerd: the seed's first test, then
// the faults a worker must ride out.
var _ = Describe("A node running real containers", Label("integ"), func() {
	var (
		ctd     *ctdtest.Daemon
		cluster *proc.Cluster
		m       *proc.Manager
		client  *api.Client
		ctrd    *containerd.Client
		ctx     context.Context
		root    string
	)
	BeforeEach(func(sctx SpecContext) {
		n := startNode(sctx, testimage.Options{})
		ctd, cluster, m, client, ctrd, root = n.ctd, n.cluster, n.m, n.client, n.ctrd, n.root
		ctx = namespaces.WithNamespace(context.Background(), wctd.DefaultNamespace)
	})

	// tasks returns the service's tasks that should run, by ID.
	tasks := func(service string) []*types.Container {
		GinkgoHelper()
		s, err := client.GetService(ctx, service)
		Expect(err).NotTo(HaveOccurred())
		all, err := client.ListContainers(context.Background(), s.ID, "", false)
		Expect(err).NotTo(HaveOccurred())
		var out []*types.Container
		for _, t := range all {
			if t.DesiredState == types.ContainerRunning {
				out = append(out, t)
			}
		}
		slices.SortFunc(out, func(a, b *types.Container) int { return strings.Compare(a.ID, b.ID) })
		return out
	}
	running := func(service string, n int) []*types.Container {
		GinkgoHelper()
		var ts []*types.Container
		Eventually(func() []types.ContainerState {
			ts = tasks(service)
			var states []types.ContainerState
			for _, t := range ts {
				states = append(states, t.ActualState)
			}
			return states
		}).WithTimeout(60*time.Second).WithPolling(100*time.Millisecond).Should(And(HaveLen(n), HaveEach(types.ContainerRunning)),
			func() string { return m.Tail(20) })
		return ts
	}
	// containers lists the service's containers in containerd, with their
	// task's status.
	containers := func(service string) map[string]containerd.ProcessStatus {
		GinkgoHelper()
		cs, err := ctrd.Containers(ctx, `labels."`+wctd.LabelService+`"==`+service)
		Expect(err).NotTo(HaveOccurred())
		out := map[string]containerd.ProcessStatus{}
		for _, c := range cs {
			st := containerd.ProcessStatus("no task")
			if t, err := c.Task(ctx, nil); err == nil {
				if s, err := t.Status(ctx); err == nil {
					st = s.Status
				}
			}
			out[c.ID()] = st
		}
		return out
	}
	ids := func(ts []*types.Container) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.ContainerID)
		}
		return out
	}

	It("runs a service's replicas as containers, and keeps them through a worker's kill -9 and containerd's", func(sctx SpecContext) {
		_, err := m.CLI(sctx, []string{m.APIAddr}, "service", "create", "web", "--image", testimage.DefaultName,
			"--replicas", "3", "--volume", "web-data:/data", "--", "sh", "-c", `hostname >>/data/started; `+testimage.Cmd[2])
		Expect(err).NotTo(HaveOccurred())
		before := running("web", 3)
		Expect(containers("web")).To(Equal(map[string]containerd.ProcessStatus{
			before[0].ContainerID: containerd.Running, before[1].ContainerID: containerd.Running, before[2].ContainerID: containerd.Running,
		}), "`ctr -n warren containers ls` shows the same tasks")
		started := filepath.Join(m.DataDir, "volumes", "web-data", "started")
		Eventually(func() ([]byte, error) { return os.ReadFile(started) }).Should(HaveLen(3 * (len(before[0].ContainerID) + 1)))

		By("kill -9 of the node: its containers run on, and the restarted node adopts them")
		_, err = m.Kill()
		Expect(err).NotTo(HaveOccurred())
		Expect(containers("web")).To(HaveLen(3))
		Expect(cluster.Restart(sctx, m)).To(Succeed())
		after := running("web", 3)
		Expect(ids(after)).To(Equal(ids(before)), "the same containers, not new ones")
		Consistently(func() []string { return ids(tasks("web")) }, 2*time.Second, 200*time.Millisecond).Should(Equal(ids(before)))

		By("containerd killed and restarted under the running node")
		Expect(ctd.Kill()).To(Succeed())
		time.Sleep(time.Second) // a few heartbeats without containerd
		Expect(ctd.Restart()).To(Succeed())
		Consistently(func() []string { return ids(tasks("web")) }, 3*time.Second, 200*time.Millisecond).Should(Equal(ids(before)))
		Expect(ids(running("web", 3))).To(Equal(ids(before)))
		Expect(containers("web")).To(HaveEach(containerd.Running))
		data, err := os.ReadFile(started)
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Count(string(data), "\n")).To(Equal(3), "no container was started again")

		By("removing the service removes its containers")
		_, err = m.CLI(sctx, []string{m.APIAddr}, "service", "rm", "web")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() map[string]containerd.ProcessStatus { return containers("web") }).WithTimeout(30 * time.Second).Should(BeEmpty())
	})

	It("gives a service's tasks its secret on a tmpfs, never on a disk, and relays their output", func(sctx SpecContext) {
		const value = "s3cret-4f1c9e2a"
		at := []string{m.APIAddr}
		_, err := m.CLI(sctx, at, "secret", "create", "db-password", "--from-literal", "password="+value)
		Expect(err).NotTo(HaveOccurred())
		_, err = m.CLI(sctx, at, "service", "create", "db", "--image", testimage.DefaultName, "--secret", "db-password",
			"--", "sh", "-c", `sha256sum /run/secrets/db-password; ls -ln /run/secrets; `+testimage.Cmd[2])
		Expect(err).NotTo(HaveOccurred())
		running("db", 1)

		sum := sha256.Sum256([]byte(value))
		Eventually(func() (string, error) { return m.CLI(sctx, at, "service", "logs", "db") }).WithTimeout(30 * time.Second).
			Should(And(ContainSubstring(hex.EncodeToString(sum[:])+"  /run/secrets/db-password"), MatchRegexp(`-r-------- +1 0 +0 +15 .* db-password`)))

		out, err := m.CLI(sctx, at, "secret", "ls")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`(?m)^db-password\s+15B\s+`))
		out, err = m.CLI(sctx, at, "secret", "inspect", "db-password")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`Used By:\s+db`))
		_, err = m.CLI(sctx, at, "secret", "rm", "db-password")
		Expect(err).To(MatchError(ContainSubstring("used by service db")))

		By("the value is in no file of the node: not warren.db, the raft log, snapshots, logs")
		Expect(filesContaining(m.DataDir, value)).To(BeEmpty())
		Expect(filesContaining(filepath.Dir(ctd.Address), value)).To(BeEmpty(), "nor containerd's root and state")
	})

	It("writes no secret's plaintext to any disk: state, raft log and snapshots, backups, the node's files, logs", func(sctx SpecContext) {
		at := []string{m.APIAddr}
		values := []string{randomValue(), randomValue()}
		_, err := m.CLI(sctx, at, "secret", "create", "db-password", "--from-literal", "password="+values[0])
		Expect(err).NotTo(HaveOccurred())
		_, err = m.CLI(sctx, at, "service", "create", "vault", "--image", testimage.DefaultName, "--secret", "db-password",
			"--", "sh", "-c", `sha256sum /run/secrets/db-password; `+testimage.Cmd[2])
		Expect(err).NotTo(HaveOccurred())
		first := running("vault", 1)
		digest := func(v string) string { sum := sha256.Sum256([]byte(v)); return hex.EncodeToString(sum[:]) }
		Eventually(func() (string, error) { return m.CLI(sctx, at, "service", "logs", "vault") }).WithTimeout(30 * time.Second).
			Should(ContainSubstring(digest(values[0])))

		By("a second version, rolled out with --force-recreate")
		_, err = m.CLI(sctx, at, "secret", "update", "db-password", "--from-literal", "password="+values[1])
		Expect(err).NotTo(HaveOccurred())
		_, err = m.CLI(sctx, at, "service", "update", "vault", "--force-recreate")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() []string { return ids(tasks("vault")) }).WithTimeout(60 * time.Second).ShouldNot(Equal(ids(first)))
		running("vault", 1)
		Eventually(func() (string, error) { return m.CLI(sctx, at, "service", "logs", "vault") }).WithTimeout(30 * time.Second).
			Should(ContainSubstring(digest(values[1])))

		By("enough writes for raft to take snapshots, then a backup")
		for i := range 40 {
			svc := &types.Service{Name: fmt.Sprintf("filler-%d", i), Image: testimage.DefaultName, Mode: types.ModeReplicated, DeployStrategy: types.DeployRolling}
			_, err := client.CreateService(ctx, svc)
			Expect(err).NotTo(HaveOccurred())
		}
		Eventually(func() []string { return filesNamed(m.DataDir, "state.bin") }).WithTimeout(30*time.Second).ShouldNot(BeEmpty(),
			"raft took a snapshot")
		backup := filepath.Join(root, "backup.tar.gz")
		_, err = m.CLI(sctx, at, "cluster", "backup", "--output", backup)
		Expect(err).NotTo(HaveOccurred())

		By("no file holds either value, in clear, base64 or hex, gzip and tar opened")
		var needles [][]byte
		for _, v := range values {
			needles = append(needles, []byte(v), []byte(base64.StdEncoding.EncodeToString([]byte(v))), []byte(hex.EncodeToString([]byte(v))))
		}
		for _, dir := range []string{m.DataDir, root, filepath.Dir(ctd.Address)} {
			Expect(filesHolding(dir, needles...)).To(BeEmpty(), "under %s", dir)
		}
		By("while the same search finds the secret's name in the snapshot and in the backup's state")
		Expect(filesHolding(m.DataDir, []byte("db-password"))).To(ContainElement(HaveSuffix("state.bin")))
		Expect(filesHolding(backup, []byte("db-password"))).To(ContainElement(backup + ":" + backupStateName))
	})

	It("reports a task it cannot run with an error a user can act on", func(sctx SpecContext) {
		_, err := m.CLI(sctx, []string{m.APIAddr}, "service", "create", "ghost", "--image", "warren/not-loaded:1", "--restart-condition", "none")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() string {
			out, _ := m.CLI(sctx, []string{m.APIAddr}, "service", "ps", "ghost")
			return out
		}).WithTimeout(60 * time.Second).WithPolling(200 * time.Millisecond).Should(ContainSubstring("load it with `warren image load FILE.tar` on the node"))
		Expect(containers("ghost")).To(BeEmpty())
	})
})

// filesContaining lists the regular files under dir whose bytes contain s.
// node is a one-node cluster on its own containerd, as startNode made it.
type node struct {
	ctd     *ctdtest.Daemon
	cluster *proc.Cluster
	m       *proc.Manager
	client  *api.Client
	ctrd    *containerd.Client
	root    string // the cluster's directory: data dir, logs
}

// startNode starts containerd, then a node (manager and worker) running
// its tasks there, and loads the test image into it under each name
// given (testimage.DefaultName when none); cleanups stop them all.
func startNode(sctx SpecContext, images ...testimage.Options) *node {
	GinkgoHelper()
	dir, err := os.MkdirTemp("", "ctd")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	n := &node{}
	n.ctd, err = ctdtest.Start(dir)
	Expect(err).NotTo(HaveOccurred())
	// Cleanups run last first: the nodes go, then containerd's
	// containers, then the network.
	DeferCleanup(func() { Expect(ctdtest.NetworkE2E.Remove()).To(Succeed()) })
	DeferCleanup(func() { Expect(n.ctd.Stop()).To(Succeed()) })
	n.ctrd, err = containerd.New(n.ctd.Address)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(n.ctrd.Close)

	// Raft snapshots every 16 entries, checked each second, so that a
	// spec's writes make some (the no-plaintext spec reads them).
	GinkgoT().Setenv("WARREN_RAFT_SNAPSHOT_THRESHOLD", "16")
	GinkgoT().Setenv("WARREN_RAFT_SNAPSHOT_INTERVAL", "1s")
	n.root = GinkgoT().TempDir()
	n.cluster, err = proc.StartCluster(sctx, proc.Config{Bin: warrenBin, Root: n.root, Managers: 1,
		LogLevel: "info", Runtime: []string{"--runtime", "containerd", "--containerd", n.ctd.Address,
			"--bridge", ctdtest.NetworkE2E.Bridge, "--subnet", ctdtest.NetworkE2E.Subnet}})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(n.cluster.Kill)
	n.m = n.cluster.Managers[0]
	n.client, err = n.cluster.Client()
	Expect(err).NotTo(HaveOccurred())

	for i, o := range images {
		archive := filepath.Join(GinkgoT().TempDir(), fmt.Sprintf("image-%d.tar", i))
		Expect(testimage.WriteFile(archive, o)).To(Succeed())
		out, err := n.m.CLI(sctx, []string{n.m.APIAddr}, "image", "load", "--containerd", n.ctd.Address, archive)
		Expect(err).NotTo(HaveOccurred())
		name := o.Name
		if name == "" {
			name = testimage.DefaultName
		}
		Expect(out).To(Equal("Loaded image " + name + "\n"))
	}
	return n
}

// backupStateName is the state's name inside a backup.
const backupStateName = "warren.db"

// randomValue is a secret value no file can hold by chance.
func randomValue() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "v-" + hex.EncodeToString(b)
}

// filesNamed lists the files called name under dir.
func filesNamed(dir, name string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == name {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// filesHolding lists the files under root (a directory or a file) that
// hold any of needles. A gzip file is searched unpacked, and each member
// of a tar on its own, named FILE:MEMBER.
func filesHolding(root string, needles ...[]byte) []string {
	GinkgoHelper()
	var out []string
	var search func(name string, data []byte)
	search = func(name string, data []byte) {
		if len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b {
			if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
				if unpacked, err := io.ReadAll(zr); err == nil {
					data = unpacked
				}
			}
		}
		tr := tar.NewReader(bytes.NewReader(data))
		if h, err := tr.Next(); err == nil {
			for ; err == nil; h, err = tr.Next() {
				member, _ := io.ReadAll(tr)
				search(name+":"+h.Name, member)
			}
			return
		}
		for _, n := range needles {
			if bytes.Contains(data, n) {
				out = append(out, name)
				return
			}
		}
	}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // gone meanwhile, or a socket, a fifo
		}
		if b, err := os.ReadFile(p); err == nil {
			search(p, b)
		}
		return nil
	})
	Expect(err).NotTo(HaveOccurred())
	return out
}

func filesContaining(dir, s string) []string {
	GinkgoHelper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // gone meanwhile, or a socket, a fifo
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, p)
		}
		return nil
	})
	Expect(err).NotTo(HaveOccurred())
	return out
}
