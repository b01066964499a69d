package raftsim

import "testing"

// SuiteT is the test that hosts the bubbles of the raftsim_test specs.
func SuiteT() *testing.T { return suiteT }
