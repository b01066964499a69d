// Package fake holds the Runtime, Overlay and Clock that the simulator and
// unit tests use in place of containerd, WireGuard and the wall clock.
//
// Nothing here runs in the background: the Runtime derives every container's
// state from its Clock when asked, so it behaves the same whether time is
// real or virtual, and a simulation that advances a Clock by hand replays bit
// for bit. Knobs (start latency, crash after, exit code, unhealthy, missing
// images, ignored SIGTERM) and fault calls (Runtime.Crash, Overlay.FailNext)
// let the simulator inject the failures the real backends can show.
package fake
