package cli_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"runtime"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	"github.com/warren-orchestrator/warren/cmd/warren/cli"
)

// run executes the warren command tree in-process, as main would.
func run(env map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = cli.Execute(args, &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

var _ = Describe("Root", func() {
	When("a global flag has a value outside its allowed set", func() {
		DescribeTable("fails naming the allowed values",
			func(args []string, want string) {
				code, stdout, stderr := run(nil, args...)
				Expect(code).To(Equal(1))
				Expect(stdout).To(BeEmpty())
				Expect(stderr).To(HavePrefix("Error: "))
				Expect(stderr).To(ContainSubstring(want))
				Expect(stderr).NotTo(ContainSubstring("Usage:"), "SilenceUsage must hold")
			},
			Entry("-o xml", []string{"version", "-o", "xml"}, "must be one of table, json, yaml"),
			Entry("--output=wide", []string{"--output=wide", "version"}, "must be one of table, json, yaml"),
			Entry("--log-level trace", []string{"--log-level", "trace", "version"}, "must be one of debug, info, warn, error"),
			Entry("--log-level INFO", []string{"--log-level=INFO", "version"}, "must be one of debug, info, warn, error"),
		)
	})

	When("the command is unknown", func() {
		It("fails with exit code 1 and one error line", func() {
			code, _, stderr := run(nil, "frobnicate")
			Expect(code).To(Equal(1))
			Expect(stderr).To(Equal("Error: unknown command \"frobnicate\" for \"warren\"\n"))
		})

		DescribeTable("fails in a command group too, whatever flags follow, where cobra would print help and exit 0",
			func(args []string, want string) {
				code, stdout, stderr := run(nil, args...)
				Expect(code).To(Equal(1))
				Expect(stdout).To(BeEmpty())
				Expect(stderr).To(Equal("Error: " + want + "\n"))
			},
			Entry("secret export", []string{"secret", "export", "--all", "--output", "x.json"},
				`unknown command "export" for "warren secret": run `+"`warren secret --help`"+` for its commands`),
			Entry("a flag without a command", []string{"service", "--bogus"},
				`unknown flag: --bogus: "warren service" takes a command first: run `+"`warren service --help`"),
		)

		It("still shows a group's help when asked, or given nothing", func() {
			for _, args := range [][]string{{"secret"}, {"secret", "--help"}} {
				code, stdout, _ := run(nil, args...)
				Expect(code).To(Equal(0))
				Expect(stdout).To(ContainSubstring("Available Commands:"))
			}
		})
	})

	When("the log level is debug", func() {
		DescribeTable("logs the manager address it will use to stderr",
			func(env map[string]string, args []string, want string) {
				code, _, stderr := run(env, append([]string{"--log-level", "debug", "version"}, args...)...)
				Expect(code).To(Equal(0))
				Expect(stderr).To(ContainSubstring("level=DEBUG"))
				Expect(stderr).To(ContainSubstring("manager=" + want))
			},
			Entry("default", nil, nil, cli.DefaultManager),
			Entry("from "+cli.ManagerEnv, map[string]string{cli.ManagerEnv: "10.0.0.1:9000"}, nil, "10.0.0.1:9000"),
			Entry("flag beats env", map[string]string{cli.ManagerEnv: "10.0.0.1:9000"},
				[]string{"--manager", "10.0.0.2:9001"}, "10.0.0.2:9001"),
		)
	})

	When("the log level is left at info", func() {
		It("logs no debug messages", func() {
			code, _, stderr := run(nil, "version")
			Expect(code).To(Equal(0))
			Expect(stderr).To(BeEmpty())
		})
	})

	When("asked for a shell completion script", func() {
		DescribeTable("writes a script for the warren command",
			func(shell string) {
				code, stdout, stderr := run(nil, "completion", shell)
				Expect(code).To(Equal(0), stderr)
				Expect(stdout).To(ContainSubstring("warren"))
			},
			Entry("bash", "bash"),
			Entry("zsh", "zsh"),
			Entry("fish", "fish"),
			Entry("powershell", "powershell"),
		)
	})
})

var _ = Describe("Version", func() {
	When("the output format is table", func() {
		It("prints one labelled line per field", func() {
			code, stdout, _ := run(nil, "version")
			Expect(code).To(Equal(0))
			line := regexp.MustCompile(`(?m)^([A-Za-z/ ]+):\s+(\S+)$`)
			fields := map[string]string{}
			for _, m := range line.FindAllStringSubmatch(stdout, -1) {
				fields[m[1]] = m[2]
			}
			Expect(fields).To(HaveLen(4), stdout)
			Expect(fields).To(HaveKeyWithValue("Go version", runtime.Version()))
			Expect(fields).To(HaveKeyWithValue("OS/Arch", runtime.GOOS+"/"+runtime.GOARCH))
			Expect(fields).To(HaveKey("Version"))
			Expect(fields).To(HaveKey("Git commit"))
		})
	})

	When("the output format is structured", func() {
		DescribeTable("prints the same fields as the table",
			func(format string, unmarshal func([]byte, any) error) {
				code, stdout, _ := run(nil, "version", "-o", format)
				Expect(code).To(Equal(0))
				var got map[string]string
				Expect(unmarshal([]byte(stdout), &got)).To(Succeed())
				Expect(got).To(HaveKeyWithValue("goVersion", runtime.Version()))
				Expect(got).To(HaveKeyWithValue("os", runtime.GOOS))
				Expect(got).To(HaveKeyWithValue("arch", runtime.GOARCH))
				Expect(got).To(HaveKeyWithValue("version", Not(BeEmpty())))
				Expect(got).To(HaveKeyWithValue("commit", Not(BeEmpty())))
				Expect(got).To(HaveLen(5))
			},
			Entry("json", "json", json.Unmarshal),
			Entry("yaml", "yaml", func(b []byte, v any) error { return yaml.UnmarshalStrict(b, v) }),
		)
	})

	When("version and commit are set at link time", func() {
		BeforeEach(func() {
			oldVersion, oldCommit := cli.Version, cli.Commit
			cli.Version, cli.Commit = "v1.2.3", "abc1234"
			DeferCleanup(func() { cli.Version, cli.Commit = oldVersion, oldCommit })
		})

		It("reports them", func() {
			info := cli.CurrentBuildInfo()
			Expect(info.Version).To(Equal("v1.2.3"))
			Expect(info.Commit).To(Equal("abc1234"))
		})
	})
})
