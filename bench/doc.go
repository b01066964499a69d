// Package bench holds Warren's benchmarks of the state store: single and
// concurrent fsynced writes on the bolt backend against the disk's own
// fsync floor, and look-up by name through the index against a full scan.
// Everything is in _test files; run it with `make bench` and compare runs
// with benchstat. docs/performance.md records the numbers and the goals.
package bench
