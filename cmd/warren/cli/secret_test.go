package cli_test

import (
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/cmd/warren/cli"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

var _ = Describe("secret create", func() {
	DescribeTable("refuses a value it cannot take before it calls a manager, and never echoes it",
		func(stdin string, args []string, message string) {
			var out, errOut strings.Builder
			args = append([]string{"--manager", "127.0.0.1:1", "secret", "create", "db-password"}, args...)
			code := cli.ExecuteWithInput(args, strings.NewReader(stdin), &out, &errOut, func(string) string { return "" })
			Expect(code).To(Equal(1))
			Expect(errOut.String()).To(ContainSubstring(message))
			Expect(errOut.String()).NotTo(ContainSubstring("127.0.0.1:1"))
			Expect(errOut.String()).NotTo(ContainSubstring("hunter2"))
		},
		Entry("no source", "", nil, "give exactly one of"),
		Entry("two sources", "", []string{"--from-literal", "a=hunter2", "--from-stdin"}, "give exactly one of"),
		Entry("a literal without '='", "", []string{"--from-literal", "hunter2"}, "use KEY=VALUE"),
		Entry("an empty literal value", "", []string{"--from-literal", "password="}, "empty"),
		Entry("empty stdin", "", []string{"--from-stdin"}, "empty"),
		Entry("stdin over 1 MiB", strings.Repeat("x", types.MaxSecretSize+1), []string{"--from-stdin"}, "MiB"),
		Entry("a file that does not exist", "", []string{"--from-file", filepath.Join("/nonexistent", "key.pem")}, "no such file"),
	)
})
