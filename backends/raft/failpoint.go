package raft

import (
	"github.com/pingcap/failpoint"
)

// The failpoints of this package: pingcap/failpoint markers at the places
// a fault can strike in the replication path. In a normal build each
// marker is an empty function call; a build made with failpoint-toolexec
// (make chaos builds bin/warren-failpoints that way) turns each into a
// call of the function failpoint.EnableCall registered for its path (see
// FailpointPath), if any. The simulator (sim/raftsim) registers them and
// draws what each hit does from its seed.
//
// Every callback gets the manager's ID first; the other arguments are
// given with each name. An argument of type *error lets the callback make
// the code fail there, on a path that handles the error.
const (
	// FailpointBeforeStoreLogs: raft is about to append entries to its log
	// (raft.db). Arguments: id string, entries int, err *error (an error
	// fails the append: raft refuses the RPC, or the leader steps down).
	FailpointBeforeStoreLogs = "beforeStoreLogs"
	// FailpointAfterStoreLogs: the entries are durable in raft.db, and raft
	// has not acted on it yet. Arguments: id string, last uint64 (the last
	// entry's index).
	FailpointAfterStoreLogs = "afterStoreLogs"
	// FailpointBeforeApplyBatch: the FSM is about to apply committed
	// entries to warren.db. Arguments: id string, last uint64.
	FailpointBeforeApplyBatch = "beforeApplyBatch"
	// FailpointAfterApplyBatch: the FSM committed a batch to warren.db and
	// recorded its index. Arguments: id string, last uint64.
	FailpointAfterApplyBatch = "afterApplyBatch"
	// FailpointPersistChunk: a snapshot being persisted has written some
	// chunks and is about to write the next. Arguments: id string,
	// written int64 (bytes so far), err *error (an error aborts the
	// snapshot: raft cancels it and tries again later).
	FailpointPersistChunk = "persistChunk"
	// FailpointBeforeApplyReturn: Node.Apply has its answer and is about
	// to hand it to its caller. Arguments: id string, index uint64 (0 when
	// the write failed before reaching the log).
	FailpointBeforeApplyReturn = "beforeApplyReturn"

	// failpointProbe is hit only by FailpointsBuilt.
	failpointProbe = "probe"
)

// Failpoints lists every failpoint of this package, in the order a write
// meets them.
var Failpoints = []string{
	FailpointBeforeStoreLogs, FailpointAfterStoreLogs,
	FailpointBeforeApplyBatch, FailpointAfterApplyBatch,
	FailpointPersistChunk, FailpointBeforeApplyReturn,
}

// failpointPkg is this package's import path, the prefix failpoint-toolexec
// gives every failpoint name of the package.
const failpointPkg = "github.com/warren-orchestrator/warren/backends/raft"

// FailpointPath is the path failpoint.EnableCall and failpoint.Disable
// know a failpoint of this package by.
func FailpointPath(name string) string { return failpointPkg + "/" + name }

// FailpointsBuilt reports whether this binary's markers were rewritten by
// failpoint-toolexec, so that failpoints registered with
// failpoint.EnableCall fire. It registers a probe for a moment: do not
// call it while another goroutine enables or disables the probe.
func FailpointsBuilt() bool {
	path := FailpointPath(failpointProbe)
	hit := false
	if err := failpoint.EnableCall(path, func(h *bool) { *h = true }); err != nil {
		return false
	}
	defer func() { _ = failpoint.Disable(path) }()
	probe(&hit)
	return hit
}

// probe is a marker that only FailpointsBuilt enables.
func probe(hit *bool) {
	failpoint.InjectCall(failpointProbe, hit)
}
