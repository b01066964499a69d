package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/cmd/warren/cli"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// The storage guide's three files ("YAML Configuration"), verbatim.
var (
	guideVolume  = filepath.Join("testdata", "apply", "volume.yaml")
	guideSecret  = filepath.Join("testdata", "apply", "secret.yaml")
	guideService = filepath.Join("testdata", "apply", "service.yaml")
)

func readFile(path string) string {
	GinkgoHelper()
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}

var _ = Describe("apply", Label("integ"), func() {
	var global []string
	BeforeEach(func() { _, global = startCluster() })

	warren := func(args ...string) (int, string, string) { return run(nil, append(global, args...)...) }
	// warrenIn runs warren with stdin as its standard input.
	warrenIn := func(stdin string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := cli.ExecuteWithInput(append(global, args...), strings.NewReader(stdin), &out, &errOut, func(string) string { return "" })
		return code, out.String(), errOut.String()
	}
	// inspect returns `warren KIND inspect NAME -o json`.
	inspect := func(kind, name string) string {
		GinkgoHelper()
		code, out, errOut := warren(kind, "inspect", name, "-o", "json")
		Expect(code).To(Equal(0), errOut)
		return out
	}

	It("applies the storage guide's files, then finds nothing to change", func() {
		code, out, errOut := warren("apply", "-f", guideVolume, "-f", guideSecret, "-f", guideService)
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(Equal("volume/db-data created\nsecret/db-password created\nservice/postgres created\n"))

		var secret struct {
			ID      string `json:"id"`
			Size    int    `json:"size"`
			Version int    `json:"version"`
		}
		Expect(json.Unmarshal([]byte(inspect("secret", "db-password")), &secret)).To(Succeed())
		Expect(secret.Size).To(Equal(len("secret123")), "the decoded value of its one key")
		Expect(secret.Version).To(Equal(1))
		var vol struct {
			Driver string            `json:"driver"`
			Labels map[string]string `json:"labels"`
		}
		Expect(json.Unmarshal([]byte(inspect("volume", "db-data")), &vol)).To(Succeed())
		Expect(vol.Driver).To(Equal("local"))
		Expect(vol.Labels).To(Equal(map[string]string{"env": "production", "app": "postgres"}))
		svcJSON := inspect("service", "postgres")
		var svc types.Service
		Expect(json.Unmarshal([]byte(svcJSON), &svc)).To(Succeed())
		Expect(svc.Image).To(Equal("postgres:15"))
		Expect(svc.Replicas).To(Equal(1))
		Expect(svc.Volumes).To(Equal([]*types.VolumeMount{{Source: "db-data", Target: "/var/lib/postgresql/data"}}))
		Expect(svc.Secrets).To(Equal([]string{secret.ID}))
		Expect(svc.Env).To(Equal([]string{"POSTGRES_PASSWORD_FILE=/run/secrets/db-password"}))

		code, out, errOut = warren("apply", "-f", guideVolume, "-f", guideSecret, "-f", guideService)
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(Equal("volume/db-data unchanged\nsecret/db-password unchanged\nservice/postgres unchanged\n"))
		Expect(inspect("service", "postgres")).To(Equal(svcJSON), "not written again: the same UpdatedAt")
		Expect(inspect("secret", "db-password")).To(ContainSubstring(`"version": 1`))
	})

	It("refuses a bad file, naming the file, the document and the field, and changes nothing", func() {
		code, _, errOut := warren("apply", "-f", guideVolume, "-f", guideSecret, "-f", guideService)
		Expect(code).To(Equal(0), errOut)
		before := inspect("service", "postgres")

		bad := filepath.Join(GinkgoT().TempDir(), "bad.yaml")
		badService := strings.NewReplacer("postgres:15", "postgres:16", "/var/lib/postgresql/data", "data").Replace(readFile(guideService))
		Expect(os.WriteFile(bad, []byte("apiVersion: warren.io/v1\nkind: Volume\nmetadata:\n  name: cache\n---\n"+badService), 0o600)).To(Succeed())
		code, out, errOut := warren("apply", "-f", guideSecret, "-f", bad)
		Expect(code).To(Equal(1))
		Expect(out).To(BeEmpty())
		Expect(errOut).To(ContainSubstring("nothing was applied"))
		Expect(errOut).To(ContainSubstring(bad + `: document 2 (Service postgres): spec.volumes[0].mountPath "data" is not an absolute path`))

		Expect(inspect("service", "postgres")).To(Equal(before))
		code, _, _ = warren("volume", "inspect", "cache")
		Expect(code).To(Equal(1), "the good document of the file was not applied either")

		typo := filepath.Join(GinkgoT().TempDir(), "typo.yaml")
		Expect(os.WriteFile(typo, []byte(strings.Replace(readFile(guideService), "mountPath", "mountpath", 1)), 0o600)).To(Succeed())
		code, _, errOut = warren("apply", "-f", typo)
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring(typo + ": document 1 (Service postgres): spec.volumes[0].mountpath is not a field Warren knows: use name, mountPath or readOnly (line 10)"))
		Expect(inspect("service", "postgres")).To(Equal(before))
	})

	It("reads several documents per file from standard input, and makes a secret's next version", func() {
		all := readFile(guideVolume) + "---\n" + readFile(guideSecret) + "---\n" + readFile(guideService)
		code, out, errOut := warrenIn(all, "apply", "-f", "-")
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(Equal("volume/db-data created\nsecret/db-password created\nservice/postgres created\n"))

		rotated := strings.Replace(all, "c2VjcmV0MTIz", "bmV3LXNlY3JldA==", 1) // "new-secret"
		code, out, errOut = warrenIn(rotated, "apply", "-f", "-")
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(HavePrefix("volume/db-data unchanged\nsecret/db-password configured (version 2)\nservice/postgres unchanged\n"))
		Expect(out).To(ContainSubstring("running tasks keep version 1 of secret db-password"))
		Expect(inspect("secret", "db-password")).To(ContainSubstring(`"version": 2`))

		scaled := strings.Replace(rotated, "replicas: 1", "replicas: 3", 1)
		code, out, errOut = warrenIn(scaled, "apply", "--dry-run", "-f", "-")
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(Equal("volume/db-data unchanged (dry run)\nsecret/db-password unchanged (dry run)\nservice/postgres configured (spec.replicas) (dry run)\n"))
		Expect(inspect("service", "postgres")).To(ContainSubstring(`"Replicas": 1,`))

		code, out, errOut = warrenIn(scaled, "apply", "-f", "-")
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(ContainSubstring("service/postgres configured (spec.replicas)\n"))
		Expect(inspect("service", "postgres")).To(ContainSubstring(`"Replicas": 3,`))
	})
})

var _ = Describe("apply without a cluster", func() {
	DescribeTable("refuses what it cannot read before it calls a manager",
		func(stdin string, args []string, message string) {
			var out, errOut bytes.Buffer
			args = append([]string{"--manager", "127.0.0.1:1", "apply"}, args...)
			code := cli.ExecuteWithInput(args, strings.NewReader(stdin), &out, &errOut, func(string) string { return "" })
			Expect(code).To(Equal(1))
			Expect(errOut.String()).To(ContainSubstring(message))
			Expect(errOut.String()).NotTo(ContainSubstring("127.0.0.1:1"))
			Expect(errOut.String()).NotTo(ContainSubstring("hunter"))
		},
		Entry("no file", "", nil, "needs -f FILE"),
		Entry("a file that does not exist", "", []string{"-f", "/nonexistent/service.yaml"}, "no such file"),
		Entry("standard input twice", "", []string{"-f", "-", "-f", "-"}, "can be read once"),
		Entry("an empty standard input", "", []string{"-f", "-"}, "stdin: holds no document"),
		Entry("a secret of two values, never echoed", "apiVersion: warren.io/v1\nkind: Secret\nmetadata: {name: s}\nspec: {stringData: {a: hunter2, b: hunter3}}\n",
			[]string{"-f", "-"}, "stdin: document 1 (Secret s): spec has 2 values"),
	)

	It("reports the problems of every file at once", func() {
		other := filepath.Join(GinkgoT().TempDir(), "service.yaml")
		Expect(os.WriteFile(other, []byte(strings.Replace(readFile(guideService), "replicas: 1", "replicas: one", 1)), 0o600)).To(Succeed())
		var out, errOut bytes.Buffer
		code := cli.ExecuteWithInput([]string{"--manager", "127.0.0.1:1", "apply", "-f", "-", "-f", guideVolume, "-f", other},
			strings.NewReader("apiVersion: warren.io/v2\nkind: Volume\nmetadata: {name: x}\n"), &out, &errOut, func(string) string { return "" })
		Expect(code).To(Equal(1))
		Expect(errOut.String()).To(ContainSubstring(`stdin: document 1 (Volume x): apiVersion "warren.io/v2" is not one Warren reads: use warren.io/v1 (line 1)`))
		Expect(errOut.String()).To(ContainSubstring(other + `: document 1 (Service postgres): spec.replicas is "one": want a whole number (line 7)`))
		Expect(errOut.String()).NotTo(ContainSubstring(guideVolume), "the good file has no problem")
		Expect(out.String()).To(BeEmpty())
	})
})
