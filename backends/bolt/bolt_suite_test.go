package bolt_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestMain(m *testing.M) {
	// The crash-safety spec re-runs this test binary as its writer child.
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

func TestBolt(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Bolt Suite")
}
