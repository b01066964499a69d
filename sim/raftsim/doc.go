// Package raftsim is tier B of the simulator: real hashicorp/raft managers
// on the real bolt stores, in one process, in virtual time, under faults
// drawn from a seed. Where tier A (package sim) checks a model of Raft bit
// for bit, this tier runs the code production runs, so that failover,
// restart, snapshot and InstallSnapshot paths are exercised for real.
//
// # What runs
//
// Each manager is a backends/raft.Node, opened by backends/raft.Open as
// production opens it (the FSM over warren.db with NoSync, raft.db as
// raft's log and stable store, file snapshots, DefaultTiming, a 5 ms
// commit timeout, BatchApplyCh, NoSnapshotRestoreOnStart), with the hooks
// of its Config for what a run replaces: the Transport (the simulated
// network, instead of TCP with mutual TLS), WrapLogStore (the simulated
// disk under raft.db), Observe (elections, for the checks), OnApply and
// Fatal. Writes go through Node.Apply and reads through Node.Barrier and
// Node.Store, so the error mapping (ErrNotLeader, ErrNoQuorum,
// ErrOutcomeUnknown, state.ErrClosed) and Node.Close are production's.
// Two differences: all managers are bootstrapped with one configuration
// of N voters (Node.BootstrapCluster; production bootstraps one and adds
// the others), and snapshots are taken every 64 entries, checked every
// second (Config.SnapshotThreshold and SnapshotInterval; production keeps
// raft's 8192 entries and two minutes, which a 30-second run never
// reaches), so that log compaction and InstallSnapshot to a manager that
// was down happen.
//
// The data directories go to /dev/shm when it exists: a real fsync is a
// syscall, which takes no virtual time but real time, and on tmpfs it is
// nearly free. Disk latency is simulated instead, in virtual time: each
// write of raft.db waits a latency drawn from the scenario's disk.fsync
// range, in order per manager, and a disk stall holds them (warren.db is
// written without sync, as in production, so it waits for nothing).
//
// Managers talk through Transport, an hraft.Transport over Network: every
// request and every answer is delayed by a drawn latency, or lost with the
// configured probability, and cut by partitions and crashes, both when it
// is sent and when it arrives; messages on one link arrive in order, as on
// TCP. A message to a crashed manager is refused after a round trip; a
// lost one makes the caller wait for the RPC timeout (2 s, as production's
// NetworkTransport). Pipelining and pre-vote work as in production; the
// heartbeat fast path is not simulated.
//
// A crash takes the manager off the network at once and stops its disk
// from making raft wait; its Node then closes in the background, as
// production's does (the writes and barriers in flight get raft's answer
// or an unknown outcome, raft shuts down, the stores close). What it
// writes meanwhile stays in its files, as after kill -9, and reaches no
// one. A restart waits for that close, then opens a Node again on the
// same files, so the FSM resumes from warren.db's applied index and raft
// from raft.db.
//
// # Clients and checks
//
// K clients (4 by default) share a scenario's load: creates of secrets of
// their own, updates of the scenario's services (shared objects), and
// linearizable reads (a Barrier on the leader, then the store), sent over
// the network to the manager each believes leads, following the leader a
// manager names. Each operation is recorded with its call and return (a
// shared counter, so the real-time order is exact) and its outcome: done,
// refused by the FSM, or unknown (no answer, or the leader lost the lead:
// raft cannot say whether it will be applied). What certainly did not
// happen (not the leader, no quorum to enqueue, a manager down) is retried
// elsewhere and left out of the history.
//
// Checked while the run goes on: one leader per term (an observer filter
// on each raft sees the state change on raft's own goroutine, with the
// term it was elected in); committed entries agree (every manager's FSM
// applies the same write at an index); a write acknowledged at an index
// is the one applied there. Checked once the faults have healed and the
// cluster converged (a leader, a write acknowledged, every manager caught
// up): every acknowledged create is in every manager's store; the stores
// are equal; the leader changes the scenario expects happened. Then,
// outside the bubble, porcupine checks the history for linearizability,
// with one model per object; an unknown write has an infinite return time
// and may take effect at any point after its call, or never.
//
// Three deliberately broken variants prove the checks can fail (see
// Broken), each a change to what the manager's API does with its Node: a
// manager that acknowledges a write once it has handed it to raft
// (Node.Propose) before it commits, one that serves reads from its own
// store without a Barrier, and one that forgets raft.db when it restarts.
//
// # Failpoints
//
// backends/raft marks with pingcap/failpoint the places a fault can strike
// in the replication path (backends/raft.Failpoints): before and after
// raft.db appends, before and after the FSM applies a batch, between two
// chunks of a snapshot being persisted, and before Node.Apply answers. In
// a normal build the markers are empty calls; in one built with
// failpoint-toolexec (bin/warren-failpoints, see `make chaos`) they call
// what Options.Failpoints registers (failpoint.EnableCall): never
// failpoint's own probability terms, always the run's Source. The seed
// draws, after the rest of the plan, how often a hit is delayed (and by
// how much at most) and how often one fails where the code handles an
// error (a leader's append: it steps down; a snapshot's chunk: raft
// cancels and retries; not a follower's append, after which
// hashicorp/raft leaves its last index wrong), and one or two crashes,
// each armed at a time and striking the next manager to pass its
// failpoint, right after it (it is off the network before the code goes
// on) and restarting it after a drawn span. Each hit then draws from the
// Source. Failpoints act only in the faulty phase, and the Outcome counts
// each one's hits and what was done with them. FailpointsBuilt tells
// whether the binary has them.
//
// # Virtual time
//
// Run hosts each run in a testing/synctest bubble: every goroutine of the
// run (raft's, bbolt's, the network's, the clients') starts inside it,
// timers and sleeps run in virtual time, and time advances only when every
// goroutine of the bubble is blocked. A 20-second scenario takes about a
// second of wall time. Nothing needed changing in hashicorp/raft or bbolt;
// what a bubble demands is handled here:
//
//   - A goroutine in a syscall (bbolt's fsync, the snapshot files) is not
//     blocked: virtual time stands still while it runs, so I/O takes no
//     virtual time (hence the simulated disk).
//   - hashicorp/raft never answers an Apply or Barrier future still in its
//     apply channel, nor a committed one still in its FSM channel, when it
//     shuts down; a goroutine waiting on one would block for ever, and the
//     bubble with it. Node.Close handles it, for production as for the
//     simulator: it lets the calls in flight finish before raft shuts down
//     (raft answers all it has while it runs: applied, refused or
//     leadership lost) and only then shuts raft down. Were one still
//     unanswered after Timing.Apply, it would return anyway, but its
//     waiting goroutine would stay blocked and the bubble report a
//     deadlock. The simulated disk never holds raft up once its manager
//     crashed.
//   - Once the bubble's main goroutine returns, time no longer advances:
//     messages still on their way must be dropped first (Network.Close).
//   - Assertions cannot fail inside the bubble (a Ginkgo failure would
//     panic on a bubble goroutine), and porcupine's timeout is a timer: a
//     run returns an Outcome, and the history is checked after the bubble.
//
// # What replays
//
// Runs are reproducible by fault schedule, not bit for bit. Before the
// cluster starts, the seed's one PCG source draws the network's shape and
// every fault (time, kind, length, target) with tier A's distributions
// (not its exact sequence of draws: targets here are managers only, so a
// seed's faults differ between the tiers); PlanOf prints that plan, and it
// is the same for a seed on every run.
// After that, the same source draws each message's latency and loss and
// each client's next operation, but in the order goroutines happen to ask,
// which Go's scheduler decides; hashicorp/raft draws its election timeouts
// from math/rand on its own. So the same seed replays the same faults at
// the same virtual times against a run that differs in detail, and the
// invariants must hold on every run. A target named "leader" is resolved
// when the fault strikes.
//
// Workers, containers and their faults (crash-task, worker crashes) are
// outside this tier's consensus layer: they are kept in the plan, marked
// as not simulated.
package raftsim
