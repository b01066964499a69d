// Package orchestrator is the core of Warren: it decides, it never does I/O.
//
// Given the cluster state, an event, the current time and a seeded random
// source, the core computes the next state and the effects to carry out
// (place, stop, restart, roll or reschedule a container; push an assignment to
// a worker). The edges carry those effects out: backends/ for storage, raft,
// containerd and WireGuard, cmd/ for wiring, sim/ for the deterministic
// simulator. That is why the same core runs unchanged in production and in a
// seeded simulation.
//
// Rules, enforced by tests in this package:
//   - no package under orchestrator/ imports a backend, cmd/, bbolt,
//     hashicorp/raft, containerd, WireGuard or netlink;
//   - no non-test file reads the wall clock (time.Now, time.Sleep, timers,
//     tickers) or uses the global math/rand sources: a Clock and a *rand.Rand
//     are injected.
//
// The interfaces the core consumes (Runtime, Overlay, Clock, Store) are
// declared in this package, where they are used.
package orchestrator
