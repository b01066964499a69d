package daemon_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/daemon"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/secrets"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// secretService is a service whose tasks get the secret with ID id.
func secretService(name, id string) *types.Service {
	s := service(name)
	s.Secrets = []string{id}
	return s
}

// liveValues is every value of secret name the node's live containers
// hold.
func liveValues(p *proc, name string) func() []string {
	return func() []string {
		var out []string
		for _, s := range daemon.LiveSecrets(p.node) {
			if v, ok := s[name]; ok {
				out = append(out, string(v))
			}
		}
		return out
	}
}

// filesHolding lists the files under dir whose bytes contain any of needles.
func filesHolding(dir string, needles ...[]byte) []string {
	GinkgoHelper()
	var found []string
	Expect(filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(data, n) {
				found = append(found, path)
			}
		}
		return nil
	})).To(Succeed())
	return found
}

// openAll opens every version of every secret with the cluster's current
// data key alone (no previous key) under kek, and returns the values by
// "name@vN".
func openAll(p *proc, kek func(*types.Cluster) []byte) map[string]string {
	GinkgoHelper()
	c, err := daemon.ClusterRecord(p.node)
	Expect(err).NotTo(HaveOccurred())
	keys, err := secrets.Unwrap(kek(c), c.ID, c.DataKey)
	Expect(err).NotTo(HaveOccurred())
	list, err := daemon.SecretRecords(p.node)
	Expect(err).NotTo(HaveOccurred())
	out := map[string]string{}
	for _, s := range list {
		versions := map[int][]byte{s.CurrentVersion(): s.Data}
		for _, v := range s.Previous {
			versions[v.Version] = v.Data
		}
		for v, data := range versions {
			plain, err := keys.Open(types.SealedFor(s.ID, v), data)
			Expect(err).NotTo(HaveOccurred(), "%s version %d", s.Name, v)
			out[fmt.Sprintf("%s@v%d", s.Name, v)] = string(plain)
		}
	}
	return out
}

func derivedKEK(c *types.Cluster) []byte {
	GinkgoHelper()
	kek, err := secrets.DeriveKEK(c.ID, c.EncryptionSalt)
	Expect(err).NotTo(HaveOccurred())
	return kek
}

var _ = Describe("An autolocked cluster", Label("integ"), func() {
	var (
		ctx  context.Context
		root string
		cfg  daemon.Config
		key  string
		m    *proc
		c    *api.Client
	)

	BeforeEach(func() {
		ctx = context.Background()
		root = GinkgoT().TempDir()
		cfg = nodeConfig(filepath.Join(root, "m1"))
		cfg.Autolock = true
		cfg.UnlockKey = func(k string) { key = k }
		m = mustLaunch(cfg, daemon.Init)
		c = admin(cfg.DataDir, cfg.APIAddr)
	})

	It("gives its unlock key once and keeps it off the disk", func() {
		Expect(key).To(MatchRegexp(`^WRNKEY-1-[A-Za-z0-9_-]{43}$`))
		raw, err := secrets.ParseUnlockKey(key)
		Expect(err).NotTo(HaveOccurred())
		cl, err := daemon.ClusterRecord(m.node)
		Expect(err).NotTo(HaveOccurred())
		Expect(cl.Autolock).To(BeTrue())
		Expect(cl.DataKey).NotTo(BeEmpty(), "made at init, to check unlock keys against")
		_, err = c.CreateSecret(ctx, "db-password", []byte("s3cret"))
		Expect(err).NotTo(HaveOccurred())
		Expect(m.stop()).To(Succeed())
		Expect(filesHolding(cfg.DataDir, raw, []byte(key[len(secrets.UnlockKeyPrefix):]),
			[]byte(base64.StdEncoding.EncodeToString(raw)), []byte(hex.EncodeToString(raw)))).To(BeEmpty())
	})

	It("is locked after a restart, refuses a wrong key, and works again once unlocked", func() {
		info, err := c.CreateSecret(ctx, "db-password", []byte("s3cret"))
		Expect(err).NotTo(HaveOccurred(), "the manager that ran init is unlocked")
		_, err = c.CreateService(ctx, secretService("web", info.ID))
		Expect(err).NotTo(HaveOccurred())
		Eventually(liveValues(m, "db-password"), 10*time.Second, 50*time.Millisecond).Should(Equal([]string{"s3cret"}))

		Expect(m.stop()).To(Succeed())
		back := mustLaunch(cfg, daemon.Start)
		c = admin(cfg.DataDir, cfg.APIAddr)

		By("refusing to seal while locked, saying how to unlock")
		_, err = c.CreateSecret(ctx, "api-key", []byte("k-123"))
		Expect(err).To(MatchError(fsm.ErrConflict))
		Expect(err.Error()).To(ContainSubstring("the cluster is locked: run `warren cluster unlock --manager " + cfg.APIAddr))
		_, err = c.GetSecret(ctx, "api-key")
		Expect(err).To(MatchError(ContainSubstring("no secret")))
		// Everything else works.
		_, err = c.CreateService(ctx, secretService("web2", info.ID))
		Expect(err).NotTo(HaveOccurred())

		By("giving no task its secret while locked")
		Consistently(liveValues(back, "db-password"), 2*time.Second, 100*time.Millisecond).Should(BeEmpty())

		By("refusing a wrong key, changing nothing")
		wrong, err := secrets.FormatUnlockKey(bytes.Repeat([]byte{9}, 32))
		Expect(err).NotTo(HaveOccurred())
		_, err = c.Unlock(ctx, cfg.APIAddr, wrong)
		Expect(err).To(MatchError(api.ErrForbidden))
		Expect(err.Error()).To(ContainSubstring("not the unlock key of cluster"))
		_, err = c.CreateSecret(ctx, "api-key", []byte("k-123"))
		Expect(err).To(MatchError(ContainSubstring("the cluster is locked")))

		By("unlocking with the right key")
		res, err := c.Unlock(ctx, cfg.APIAddr, key)
		Expect(err).NotTo(HaveOccurred())
		Expect(res).To(Equal(&api.UnlockResult{Manager: back.node.Identity.NodeID}))
		_, err = c.CreateSecret(ctx, "api-key", []byte("k-123"))
		Expect(err).NotTo(HaveOccurred())
		Eventually(liveValues(back, "db-password"), 10*time.Second, 50*time.Millisecond).Should(Equal([]string{"s3cret", "s3cret"}))

		By("rotating the data key, which keeps the unlock key")
		rot, err := c.RotateDataKey(ctx, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(rot.NewKEK).To(BeFalse())
		Expect(rot).To(HaveField("Secrets", 2))
		Expect(back.stop()).To(Succeed())
		again := mustLaunch(cfg, daemon.Start)
		_, err = c.Unlock(ctx, cfg.APIAddr, key)
		Expect(err).NotTo(HaveOccurred())
		raw, err := secrets.ParseUnlockKey(key)
		Expect(err).NotTo(HaveOccurred())
		Expect(openAll(again, func(*types.Cluster) []byte { return raw })).To(Equal(map[string]string{
			"db-password@v1": "s3cret", "api-key@v1": "k-123",
		}))
	})

	It("refuses an unlock of a cluster that is not autolocked", func() {
		plainCfg := nodeConfig(filepath.Join(root, "plain"))
		mustLaunch(plainCfg, daemon.Init)
		_, err := admin(plainCfg.DataDir, plainCfg.APIAddr).Unlock(ctx, plainCfg.APIAddr, key)
		Expect(err).To(MatchError(fsm.ErrConflict))
		Expect(err.Error()).To(ContainSubstring("is not autolocked"))
	})

	It("refuses an autolocked init nobody would get the key of, writing nothing", func() {
		bad := nodeConfig(filepath.Join(root, "lost"))
		bad.Autolock = true
		_, err := launch(bad, daemon.Init)
		Expect(err).To(MatchError(ContainSubstring("Config.Autolock needs Config.UnlockKey")))
		_, statErr := os.Stat(bad.DataDir)
		Expect(os.IsNotExist(statErr)).To(BeTrue())
	})

	When("a manager joins", func() {
		It("starts locked, and is unlocked by itself", func() {
			m2 := mustLaunch(nodeConfig(filepath.Join(root, "m2")), joiner(cfg.APIAddr, token(c, "manager"), true))
			addr := m2.cfg.APIAddr
			Eventually(func() (bool, error) {
				cl, err := daemon.ClusterRecord(m2.node)
				return err == nil && cl.Autolock, nil
			}, 10*time.Second, 50*time.Millisecond).Should(BeTrue())
			Expect(daemon.Unlocked(m2.node)).To(BeFalse())
			Expect(daemon.Unlocked(m.node)).To(BeTrue(), "the manager that ran init")
			Eventually(func() error {
				_, err := c.Unlock(ctx, addr, key)
				return err
			}, 10*time.Second, 100*time.Millisecond).Should(Succeed(), "once it has the cluster record")
			res, err := c.Unlock(ctx, addr, key)
			Expect(err).NotTo(HaveOccurred())
			Expect(res.AlreadyUnlocked).To(BeTrue())
			Expect(res.Manager).To(Equal(m2.node.Identity.NodeID))
			Expect(daemon.Unlocked(m2.node)).To(BeTrue())
		})
	})
})

var _ = Describe("Rotating the data key", Label("integ"), func() {
	var (
		ctx context.Context
		m   *proc
		c   *api.Client
		ids map[string]string
	)

	BeforeEach(func() {
		ctx = context.Background()
		cfg := nodeConfig(filepath.Join(GinkgoT().TempDir(), "m1"))
		// Long enough that a restart does not make the node down, and its
		// task replaced by one made with the latest version.
		cfg.Dispatcher = dispatcher.Config{TTL: 10 * time.Second, Grace: 10 * time.Second}
		m = mustLaunch(cfg, daemon.Init)
		c = admin(m.cfg.DataDir, m.cfg.APIAddr)
		ids = map[string]string{}
		for _, name := range []string{"a", "b", "c"} {
			info, err := c.CreateSecret(ctx, name, []byte(name+"-1"))
			Expect(err).NotTo(HaveOccurred())
			ids[name] = info.ID
		}
		// A task made with a@v1 keeps it through the update: a has two
		// versions to seal again.
		_, err := c.CreateService(ctx, secretService("web", ids["a"]))
		Expect(err).NotTo(HaveOccurred())
		Eventually(liveValues(m, "a"), 10*time.Second, 50*time.Millisecond).Should(Equal([]string{"a-1"}))
		_, err = c.UpdateSecret(ctx, "a", []byte("a-2"))
		Expect(err).NotTo(HaveOccurred())
	})

	It("seals every secret and version again under a new key and salt, and drops the old key", func() {
		before, err := daemon.ClusterRecord(m.node)
		Expect(err).NotTo(HaveOccurred())
		var lines []api.KeyRotation
		rot, err := c.RotateDataKey(ctx, func(p api.KeyRotation) { lines = append(lines, p) })
		Expect(err).NotTo(HaveOccurred())
		Expect(rot).To(Equal(&api.KeyRotation{NewKEK: true, Total: 3, Secrets: 3, Versions: 4, Done: true}))
		Expect(lines[0]).To(Equal(api.KeyRotation{NewKEK: true, Total: 3}))

		after, err := daemon.ClusterRecord(m.node)
		Expect(err).NotTo(HaveOccurred())
		Expect(after.DataKey).NotTo(Equal(before.DataKey))
		Expect(after.EncryptionSalt).NotTo(Equal(before.EncryptionSalt))
		Expect(after.PreviousDataKey).To(BeEmpty())
		Expect(openAll(m, derivedKEK)).To(Equal(map[string]string{"a@v1": "a-1", "a@v2": "a-2", "b@v1": "b-1", "c@v1": "c-1"}))
		_, err = secrets.Unwrap(derivedKEK(before), before.ID, after.DataKey)
		Expect(err).To(MatchError(secrets.ErrWrongKey), "the old KEK opens nothing now")

		By("still delivering old versions to the tasks made with them")
		Expect(m.stop()).To(Succeed())
		back := mustLaunch(m.cfg, daemon.Start)
		Eventually(liveValues(back, "a"), 10*time.Second, 50*time.Millisecond).Should(Equal([]string{"a-1"}))
	})

	It("finishes a rotation a leader left half done, and every secret opens meanwhile", func() {
		// What a leader that stopped after its first re-sealing leaves:
		// the new key in place, the old one as the previous, one secret
		// moved.
		cl, err := daemon.ClusterRecord(m.node)
		Expect(err).NotTo(HaveOccurred())
		half := types.Clone(cl)
		kek := derivedKEK(cl)
		half.DataKey, half.PreviousDataKey, err = secrets.RotateDataKey(kek, kek, cl.ID, cl.DataKey, bytes.NewReader(bytes.Repeat([]byte{3}, 200)))
		Expect(err).NotTo(HaveOccurred())
		Expect(daemon.ApplyOn(m.node, &fsm.SetCluster{Cluster: half})).To(Succeed())
		keys, err := secrets.UnwrapWithPrevious(kek, cl.ID, half.DataKey, half.PreviousDataKey)
		Expect(err).NotTo(HaveOccurred())
		list, err := daemon.SecretRecords(m.node)
		Expect(err).NotTo(HaveOccurred())
		moved := types.Clone(list[0])
		moved.Data, _, err = keys.Reseal(types.SealedFor(moved.ID, moved.CurrentVersion()), moved.Data, bytes.NewReader(bytes.Repeat([]byte{4}, 12)))
		Expect(err).NotTo(HaveOccurred())
		Expect(daemon.ApplyOn(m.node, &fsm.UpdateSecret{Secret: moved})).To(Succeed())

		// Meanwhile secrets are delivered, under either key.
		_, err = c.CreateService(ctx, secretService("uses-b", ids["b"]))
		Expect(err).NotTo(HaveOccurred())
		Eventually(liveValues(m, "b"), 10*time.Second, 50*time.Millisecond).Should(Equal([]string{"b-1"}))

		rot, err := c.RotateDataKey(ctx, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(rot.Resumed).To(BeTrue())
		Expect(rot.NewKEK).To(BeFalse())
		Expect(rot.Versions).To(Equal(3), "the four versions but the one moved already")
		after, err := daemon.ClusterRecord(m.node)
		Expect(err).NotTo(HaveOccurred())
		Expect(after.DataKey).To(Equal(half.DataKey), "the key the first rotation made")
		Expect(after.PreviousDataKey).To(BeEmpty())
		Expect(openAll(m, derivedKEK)).To(HaveLen(4))
	})

	It("loses no secret update made while it runs", func() {
		for i := range 20 {
			_, err := c.CreateSecret(ctx, fmt.Sprintf("more-%d", i), []byte("x"))
			Expect(err).NotTo(HaveOccurred())
		}
		const updates = 10
		done := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			for i := range updates {
				for {
					_, err := c.UpdateSecret(ctx, "b", []byte(fmt.Sprintf("b-%d", i+2)))
					if errors.Is(err, fsm.ErrConflict) {
						continue // sealed under a key a rotation dropped meanwhile: send it again
					}
					if err != nil {
						done <- err
						return
					}
					break
				}
			}
			done <- nil
		}()
		for range 3 {
			_, err := c.RotateDataKey(ctx, nil)
			Expect(err).NotTo(HaveOccurred())
		}
		Eventually(done, 30*time.Second).Should(Receive(BeNil()))
		_, err := c.RotateDataKey(ctx, nil)
		Expect(err).NotTo(HaveOccurred())

		cl, err := daemon.ClusterRecord(m.node)
		Expect(err).NotTo(HaveOccurred())
		Expect(cl.PreviousDataKey).To(BeEmpty())
		values := openAll(m, derivedKEK)
		Expect(values).To(HaveKeyWithValue(fmt.Sprintf("b@v%d", updates+1), fmt.Sprintf("b-%d", updates+1)))
		Expect(values).To(HaveKeyWithValue("more-19@v1", "x"))
	})

	It("with no secret yet, has nothing to rotate", func() {
		fresh := mustLaunch(nodeConfig(filepath.Join(GinkgoT().TempDir(), "fresh")), daemon.Init)
		rot, err := admin(fresh.cfg.DataDir, fresh.cfg.APIAddr).RotateDataKey(ctx, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(rot).To(Equal(&api.KeyRotation{NoKey: true, Done: true}))
	})
})
