package e2e

import (
	"os/exec"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
)

// The binary hosts tier B's synctest bubbles through testing.Main, which
// only a real process can do: these specs run it.
var _ = Describe("warren sim --consensus raft", Label("sim"), func() {
	scenario := func(name string) string { return filepath.Join("..", "scenarios", name+".yaml") }

	It("runs scenarios on real raft and exits 0 when every invariant holds", func() {
		cmd := exec.Command(warrenBin, "sim", "--consensus", "raft", scenario("leader-failover"), scenario("partition"), "--runs", "2")
		s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(s, "2m").Should(gexec.Exit(0))
		Expect(s.Out).To(gbytes.Say(`leader-failover seed=1 pass`))
		Expect(s.Out).To(gbytes.Say(`4 runs on real raft: 4 passed, 0 failed`))
	})

	It("exits 2 with the replay command when a broken variant breaks an invariant", func() {
		cmd := exec.Command(warrenBin, "sim", "--consensus", "raft", scenario("partition"), "--broken", "ack-before-commit")
		s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(s, "2m").Should(gexec.Exit(2))
		Expect(s.Out).To(gbytes.Say(`invariant "no acknowledged write is lost" broken`))
		Expect(s.Out).To(gbytes.Say(`replay: warren sim --consensus raft \S+partition.yaml --seed 1 --broken ack-before-commit`))
	})

	It("refuses options only the model supports", func() {
		cmd := exec.Command(warrenBin, "sim", "--consensus", "raft", scenario("partition"), "--check-determinism")
		s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(s, "1m").Should(gexec.Exit(1))
		Expect(s.Err).To(gbytes.Say(`--check-determinism needs --consensus model`))
	})
})
