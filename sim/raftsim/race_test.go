//go:build race

package raftsim_test

// raceEnabled: under the race detector (make test) a run costs about six
// times the wall time, so the scenario specs try fewer seeds.
const raceEnabled = true
