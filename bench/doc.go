// Package bench holds Warren's benchmarks: the state store (single and
// concurrent fsynced writes on the bolt backend against the disk's own
// fsync floor; look-up by name through the index against a full scan) and
// the simulator (simulated seconds per wall second under chaos; seeds of
// leader-failover per two minutes). Everything is in _test files; run it
// with `make bench` and compare runs with benchstat. docs/performance.md
// records the numbers and the goals.
package bench
