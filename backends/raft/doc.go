// Package raft replicates the cluster state with hashicorp/raft: the FSM
// adapter that applies the core's typed commands to the bolt Store, its
// snapshots, and the TCP transport with mutual TLS between managers.
//
// The simulator's tier B (sim/raftsim) runs this package's Node as it is,
// with its own transport and disk plugged in through Config, and strikes
// at the failpoints marked in it (see Failpoints), which cost nothing in a
// normal build.
package raft
