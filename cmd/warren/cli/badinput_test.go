package cli_test

import (
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The bad input of volumes and secrets (issue 7): each gets an error that
// names the problem and the fix, exit code 1, and leaves nothing behind.
var _ = Describe("Bad storage input", Label("integ"), func() {
	var warren func(args ...string) (int, string, string)
	BeforeEach(func() {
		_, global := startCluster()
		warren = func(args ...string) (int, string, string) { return run(nil, append(global, args...)...) }
	})

	// nothing checks that no secret, volume or service exists.
	nothing := func() {
		GinkgoHelper()
		for _, kind := range []string{"secret", "volume", "service"} {
			code, out, errOut := warren(kind, "ls", "-o", "json")
			Expect(code).To(Equal(0), errOut)
			Expect(strings.TrimSpace(out)).To(Equal("[]"), "no %s was made", kind)
		}
	}

	DescribeTable("is refused with a clear error, and nothing is made",
		func(args []string, want ...string) {
			big := filepath.Join(GinkgoT().TempDir(), "big.bin")
			Expect(os.WriteFile(big, make([]byte, 1<<20+1), 0o600)).To(Succeed())
			for i, a := range args {
				args[i] = strings.ReplaceAll(a, "BIG", big)
			}
			code, out, errOut := warren(args...)
			Expect(code).To(Equal(1), out)
			Expect(errOut).To(HavePrefix("Error: "))
			for _, w := range want {
				Expect(errOut).To(ContainSubstring(w))
			}
			nothing()
		},
		Entry("a secret over 1 MiB", []string{"secret", "create", "big", "--from-file", "BIG"}, "1 MiB"),
		Entry("an empty secret", []string{"secret", "create", "empty", "--from-literal", "password="}, "empty"),
		Entry("--from-file on a missing file", []string{"secret", "create", "tls", "--from-file", "/nonexistent/cert.pem"}, "/nonexistent/cert.pem", "no such file"),
		Entry("a volume name that is not a name", []string{"volume", "create", "Bad_Name"}, `"Bad_Name"`, "name"),
		Entry("a volume mounted under a name that is not one", []string{"service", "create", "web", "--image", "busybox", "--volume", "Bad_Name:/data"}, "Bad_Name"),
		Entry("a mount path that is not absolute", []string{"service", "create", "web", "--image", "busybox", "--volume", "data:relative/path"}, "absolute path"),
		Entry("a service naming a secret that does not exist", []string{"service", "create", "web", "--image", "busybox", "--secret", "nope"}, "--secret nope", "no secret", "warren secret ls"),
		Entry("a volume driver that is not local", []string{"volume", "create", "shared", "--driver", "nfs"}, "nfs", "local"),
	)
})
