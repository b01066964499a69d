// Package proc runs clusters of real warren processes for the end-to-end
// specs (e2e/) and the failover benchmark (bench/): it builds the binary,
// starts managers with `warren cluster init`, `manager join` and `start`,
// each on its own loopback IP, ports, data directory and log file, kills
// them with SIGKILL, and drives a write load through every one of them
// with the API client, recording each write's outcome.
//
// It is test support, not product code: it reads the wall clock and
// starts processes freely.
package proc
