//go:build !race

package raftsim_test

const raceEnabled = false
