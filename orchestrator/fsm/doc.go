// Package fsm is Warren's replicated state machine: typed, versioned
// commands and the one Apply that turns a command into a change of the
// Store. Raft (backends/raft) and the simulator both apply committed log
// entries through it, so every replica makes the same change.
//
// Apply is deterministic: it reads no clock and no randomness, and a
// command carries every ID and timestamp it writes. A command is atomic:
// if it is refused, nothing of it is stored.
package fsm
