package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/cmd/warren/cli"
	"github.com/warren-orchestrator/warren/daemon"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/secrets"
)

// runIn is run with stdin.
func runIn(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errOut strings.Builder
	code = cli.ExecuteWithInput(args, strings.NewReader(stdin), &out, &errOut, func(string) string { return "" })
	return code, out.String(), errOut.String()
}

// restartable is a one-node cluster in this process that can be stopped
// and started again, as `warren start` would.
type restartable struct {
	cfg    daemon.Config
	cancel context.CancelFunc
	done   chan error
}

func (r *restartable) launch(fn func(context.Context, daemon.Config) error) {
	GinkgoHelper()
	cfg := r.cfg
	ready := make(chan struct{})
	cfg.Ready = func(*daemon.Node) { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- fn(ctx, cfg) }()
	select {
	case <-ready:
	case err := <-r.done:
		Fail("start: " + err.Error())
	}
}

func (r *restartable) stop() {
	GinkgoHelper()
	if r.cancel != nil {
		r.cancel()
		Eventually(r.done, 20*time.Second).Should(Receive())
		r.cancel = nil
	}
}

var _ = Describe("cluster init --autolock", func() {
	It("prints the unlock key with what to do with it", func() {
		var out bytes.Buffer
		cli.PrintUnlockKey(&out, "WRNKEY-1-abc", "10.0.0.5:8080")
		Expect(out.String()).To(ContainSubstring("\n    WRNKEY-1-abc\n"))
		Expect(out.String()).To(ContainSubstring("shown this once"))
		Expect(out.String()).To(ContainSubstring("Keep it safe"))
		Expect(out.String()).To(ContainSubstring("warren cluster unlock --manager 10.0.0.5:8080"))
	})

	It("is refused with --force-new-cluster, which keeps the cluster's own setting", func() {
		code, _, errOut := run(nil, "--data-dir", filepath.Join(GinkgoT().TempDir(), "x"), "cluster", "init", "--autolock", "--force-new-cluster")
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring("--autolock is for a new cluster"))
	})

	It("is a documented flag of init", func() {
		code, out, _ := run(nil, "cluster", "init", "--help")
		Expect(code).To(Equal(0))
		Expect(out).To(ContainSubstring("--autolock"))
		Expect(out).To(ContainSubstring("cluster unlock"))
	})
})

var _ = Describe("cluster unlock", func() {
	DescribeTable("refuses a key it cannot use before it calls a manager, and never echoes it",
		func(stdin string, args []string, message string) {
			code, out, errOut := runIn(stdin, append([]string{"--manager", "127.0.0.1:1", "cluster", "unlock"}, args...)...)
			Expect(code).To(Equal(1))
			Expect(out).To(BeEmpty())
			Expect(errOut).To(ContainSubstring(message))
			Expect(errOut).NotTo(ContainSubstring("127.0.0.1:1"))
			Expect(errOut).NotTo(ContainSubstring("hunter2"))
		},
		Entry("nothing on stdin", "", nil, "no unlock key on standard input"),
		Entry("not a key", "hunter2\n", nil, `does not start with "WRNKEY-1-"`),
		Entry("a key cut short", "WRNKEY-1-hunter2hunter2\n", nil, "it was cut or mistyped"),
		Entry("a key file that does not exist", "", []string{"--key-file", "/nonexistent/unlock.key"}, "no such file"),
	)

	When("the managers of an autolocked cluster restart", Label("integ"), func() {
		It("serve no secret until unlocked; a wrong key is refused; rotate-key keeps the unlock key", func() {
			var key string
			dir := filepath.Join(GinkgoT().TempDir(), "node")
			node := &restartable{cfg: daemon.Config{
				DataDir: dir, APIAddr: freeAddr(), RaftAddr: freeAddr(), Runtime: daemon.RuntimeSimulated,
				Heartbeat: 50 * time.Millisecond, Dispatcher: dispatcher.Config{TTL: time.Second, Grace: time.Second},
				Autolock: true, UnlockKey: func(k string) { key = k },
			}}
			node.launch(daemon.Init)
			DeferCleanup(node.stop)
			global := []string{"--data-dir", dir, "--manager", node.cfg.APIAddr}
			warren := func(stdin string, args ...string) (int, string, string) {
				return runIn(stdin, append(global, args...)...)
			}

			code, _, errOut := warren("", "secret", "create", "db-password", "--from-literal", "pw=s3cret")
			Expect(code).To(Equal(0), errOut)
			code, out, errOut := warren(key+"\n", "cluster", "unlock")
			Expect(code).To(Equal(0), errOut)
			Expect(out).To(MatchRegexp(`^Manager \S+ at ` + node.cfg.APIAddr + ` was unlocked already\.\n$`))

			node.stop()
			node.launch(daemon.Start)
			code, _, errOut = warren("", "secret", "create", "api-key", "--from-literal", "k=k-123")
			Expect(code).To(Equal(1))
			Expect(errOut).To(ContainSubstring("the cluster is locked: run `warren cluster unlock --manager " + node.cfg.APIAddr))

			wrong, err := secrets.FormatUnlockKey(bytes.Repeat([]byte{1}, 32))
			Expect(err).NotTo(HaveOccurred())
			code, _, errOut = warren(wrong, "cluster", "unlock")
			Expect(code).To(Equal(1))
			Expect(errOut).To(ContainSubstring("not the unlock key of cluster"))
			Expect(errOut).NotTo(ContainSubstring(wrong[10:]))
			code, _, _ = warren("", "secret", "create", "api-key", "--from-literal", "k=k-123")
			Expect(code).To(Equal(1), "still locked")

			file := filepath.Join(GinkgoT().TempDir(), "unlock.key")
			Expect(os.WriteFile(file, []byte(key+"\n"), 0o600)).To(Succeed())
			code, out, errOut = warren("", "cluster", "unlock", "--key-file", file)
			Expect(code).To(Equal(0), errOut)
			Expect(out).To(MatchRegexp(`^Manager \S+ at \S+ is unlocked\.\n$`))
			code, _, errOut = warren("", "secret", "create", "api-key", "--from-literal", "k=k-123")
			Expect(code).To(Equal(0), errOut)

			code, out, errOut = warren("", "secret", "rotate-key")
			Expect(code).To(Equal(0), errOut)
			Expect(out).To(ContainSubstring("Sealed 2 secret(s), 2 version(s) in all, again under the new data key"))
			Expect(out).To(ContainSubstring("The unlock key is unchanged"))
		})
	})
})

var _ = Describe("secret rotate-key", Label("integ"), func() {
	var warren func(args ...string) (int, string, string)

	BeforeEach(func() {
		_, global := startCluster()
		warren = func(args ...string) (int, string, string) { return run(nil, append(global, args...)...) }
	})

	It("has nothing to rotate before the first secret", func() {
		code, out, errOut := warren("secret", "rotate-key")
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(ContainSubstring("No secret was ever created"))
	})

	It("seals every secret again and says how many", func() {
		for _, name := range []string{"a", "b"} {
			code, _, errOut := warren("secret", "create", name, "--from-literal", "k=v-"+name)
			Expect(code).To(Equal(0), errOut)
		}
		code, _, errOut := warren("secret", "update", "a", "--from-literal", "k=v-a2")
		Expect(code).To(Equal(0), errOut)
		code, out, errOut := warren("secret", "rotate-key")
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(ContainSubstring("Sealed 2 secret(s), 2 version(s) in all, again under the new data key; the old key is gone."))
		Expect(out).To(ContainSubstring("The key-encryption key changed too"))

		code, out, errOut = warren("secret", "rotate-key", "-o", "json")
		Expect(code).To(Equal(0), errOut)
		var rot api.KeyRotation
		Expect(json.Unmarshal([]byte(out), &rot)).To(Succeed(), out)
		Expect(rot).To(Equal(api.KeyRotation{NewKEK: true, Total: 2, Secrets: 2, Versions: 2, Done: true}))
	})
})
