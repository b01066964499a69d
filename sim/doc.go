// Package sim is Warren's deterministic simulator (tier A): managers and
// workers running the real core (fsm, scheduler, reconciler, dispatcher,
// agent) on a simulated network, simulated disks and a model of Raft, all
// driven by one event queue in virtual time and one seeded random source.
//
// Everything random (latencies, losses, election timeouts, fault times) is
// drawn from that one source in the order events run, and events at the
// same instant run in the order they were scheduled, so a seed replays the
// same run bit for bit. Every run hashes its trace; running a seed twice
// must give the same hash.
package sim
