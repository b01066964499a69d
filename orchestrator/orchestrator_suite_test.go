package orchestrator_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestOrchestrator(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Orchestrator Suite")
}

// modRoot is the directory holding go.mod and modPath the module's path; the
// guard specs check the real tree found from them.
var modRoot, modPath string

var _ = BeforeSuite(func() {
	gomod := goCmd("", "env", "GOMOD")
	Expect(gomod).NotTo(BeEmpty(), "not inside a Go module")
	modRoot = filepath.Dir(gomod)
	modPath = goCmd(modRoot, "list", "-m", "-f", "{{.Path}}")
})

// goCmd runs the go command in dir and returns its trimmed stdout, failing the
// spec with its stderr if it exits non-zero.
func goCmd(dir string, args ...string) string {
	GinkgoHelper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	var stderr []byte
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	Expect(err).NotTo(HaveOccurred(), "go %s: %s", strings.Join(args, " "), stderr)
	return strings.TrimSpace(string(out))
}
