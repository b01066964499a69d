// Package scheduler decides which node each task of a service runs on.
//
// Placement is a pure function of a read-only cluster snapshot, as in Nomad
// and Swarmkit: a pipeline of filters removes the nodes a task cannot run on
// (readiness, availability, constraints, resources, host ports, volume
// affinity), then the nodes left are ranked: spread the service first, then
// the cluster. Ties are broken by a hash of the task and node IDs, so a replay
// of the same inputs gives the same placements without a clock or a random
// source, while different tasks still spread over equal nodes. A task that no
// node passes gets a reason a user can act on, counting per filter the nodes
// it removed.
package scheduler
