// Package daemon runs a Warren node: a manager (raft, the API, and, while
// it leads, the scheduler, reconciler and dispatcher) and a worker (the
// agent that runs the node's tasks), or both on one machine. It is the
// wiring between the core, which decides, and the backends, which do:
// goroutines, timers and retries live here, not in orchestrator/.
//
// A node's data directory holds everything it needs to start again:
//
//	node.json        who this node is: cluster, ID, role, addresses, managers
//	pki/             ca.crt, ca.key (managers only), node.crt/.key, admin.crt/.key
//	warren.db        the replicated state (managers)
//	raft.db          the raft log (managers)
//	snapshots/       raft snapshots (managers)
package daemon
