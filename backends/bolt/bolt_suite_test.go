package bolt_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestMain(m *testing.M) {
	// The crash-safety specs re-run this test binary as their writer child.
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	if dir := os.Getenv(raftCrashChildEnv); dir != "" {
		os.Exit(raftCrashChild(dir))
	}
	os.Exit(m.Run())
}

func TestBolt(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Bolt Suite")
}
