package raftsim

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// suiteT hosts the specs' synctest bubbles: synctest.Test needs the
// *testing.T of a running test, and every spec runs inside TestRaftSim.
// Specs never fail it: what happens in a bubble is returned and asserted
// outside (a failing assertion inside would panic on a bubble goroutine).
var suiteT *testing.T

func TestRaftSim(t *testing.T) {
	suiteT = t
	RegisterFailHandler(Fail)
	RunSpecs(t, "RaftSim Suite")
}
