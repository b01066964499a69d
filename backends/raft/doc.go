// Package raft replicates the cluster state with hashicorp/raft: the FSM
// adapter that applies the core's typed commands to the bolt Store, its
// snapshots, and the TCP transport with mutual TLS between managers.
package raft
