package fake

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// ExitKilled is the exit code of a container killed with SIGKILL (128 + 9),
// as containerd and Docker report it.
const ExitKilled = 137

// Knobs shape how the containers a Runtime starts behave. Each container
// keeps the knobs it was started with. Negative durations count as zero.
type Knobs struct {
	// StartLatency is how long a container stays pending before it runs:
	// image pull, create and start.
	StartLatency time.Duration
	// CrashAfter, when positive, makes a container exit on its own this
	// long after it started running, with ExitCode.
	CrashAfter time.Duration
	// ExitCode is the code a container exits with after CrashAfter: 0
	// leaves it complete, anything else failed.
	ExitCode int
	// Unhealthy makes a running container report unhealthy.
	Unhealthy bool
	// StopLatency is how long a container takes to exit after SIGTERM. If
	// that is longer than the stop timeout, it is killed at the timeout.
	StopLatency time.Duration
	// IgnoreSIGTERM makes a container run until the stop timeout, when it
	// is killed with ExitKilled.
	IgnoreSIGTERM bool
	// MissingImages are images that cannot be pulled: a container of one
	// fails at once, as a failed pull does on a real node.
	MissingImages []string
}

// clean returns k with negative durations zeroed and its own copy of
// MissingImages, so that the caller can reuse its slice.
func (k Knobs) clean() Knobs {
	k.StartLatency = max(k.StartLatency, 0)
	k.CrashAfter = max(k.CrashAfter, 0)
	k.StopLatency = max(k.StopLatency, 0)
	k.MissingImages = slices.Clone(k.MissingImages)
	return k
}

// Runtime is an orchestrator.Runtime that runs nothing. It records what it
// was asked and, on every read, computes each container's state from its
// Clock and its Knobs: no goroutine or timer moves a container along, so in
// virtual time a container changes state exactly when the clock passes the
// instant it should. It is safe for concurrent use.
type Runtime struct {
	clock orchestrator.Clock

	mu         sync.Mutex
	knobs      Knobs
	containers map[string]*container // by task ID
	ids        []string              // the keys of containers, sorted: Containers lists in this order
	started    int                   // Start calls so far; numbers RuntimeIDs
}

var _ orchestrator.Runtime = (*Runtime)(nil)

// NewRuntime returns an empty Runtime that reads time from clock and starts
// containers with knobs.
func NewRuntime(clock orchestrator.Clock, knobs Knobs) *Runtime {
	return &Runtime{clock: clock, knobs: knobs.clean(), containers: map[string]*container{}}
}

// SetKnobs changes the knobs of the containers started from now on; those
// already started keep theirs, as a real container keeps its image and
// config.
func (r *Runtime) SetKnobs(k Knobs) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.knobs = k.clean()
}

// Start creates the task's container, pending until the StartLatency knob
// has passed. A task whose image is a missing image gets a failed container
// rather than an error, as a real runtime takes the request and the pull
// fails later.
func (r *Runtime) Start(task *types.Container, secrets map[string][]byte) error {
	if task == nil {
		return errors.New("fake runtime: Start was given no task")
	}
	if err := task.Validate(); err != nil {
		return fmt.Errorf("fake runtime: refusing the task: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.containers[task.ID]; ok {
		return fmt.Errorf("%w (task %s): remove its container before starting it again", orchestrator.ErrContainerExists, task.ID)
	}
	r.started++
	now := r.clock.Now()
	c := &container{
		taskID:      task.ID,
		runtimeID:   fmt.Sprintf("fake-%s-%d", task.ID, r.started),
		knobs:       r.knobs,
		healthCheck: task.HealthCheck != nil,
		createdAt:   now,
		runningAt:   now.Add(r.knobs.StartLatency),
		secrets:     orchestrator.CloneSecrets(secrets),
	}
	if slices.Contains(r.knobs.MissingImages, task.Image) {
		c.startError = "image not found: " + task.Image
		c.secrets = nil // never mounted: the container did not get that far
	}
	r.containers[task.ID] = c
	i, _ := slices.BinarySearch(r.ids, task.ID)
	r.ids = slices.Insert(r.ids, i, task.ID)
	return nil
}

// Stop sends the task's container SIGTERM: it exits StopLatency later, or
// is killed at timeout if it is slower or ignores SIGTERM. A pending
// container is not started at all and is shut down at once. Stopping a
// container that has already exited does nothing, so that a caller may
// retry.
func (r *Runtime) Stop(taskID string, timeout time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(taskID)
	if err != nil {
		return err
	}
	now := r.clock.Now()
	switch c.at(now).State {
	case types.ContainerPending:
		c.setEnd(end{at: now, state: types.ContainerShutdown})
	case types.ContainerRunning:
		timeout = max(timeout, 0)
		e := end{at: now.Add(c.knobs.StopLatency), state: types.ContainerShutdown}
		if c.knobs.IgnoreSIGTERM || c.knobs.StopLatency > timeout {
			e = end{at: now.Add(timeout), state: types.ContainerShutdown, exitCode: ExitKilled}
		}
		// A second Stop with a shorter timeout kills sooner, as it would
		// on a real node; a longer one does not delay the first.
		if c.stop == nil || e.at.Before(c.stop.at) {
			c.stop = &e
		}
	}
	return nil
}

// Remove deletes the task's container once it has exited.
func (r *Runtime) Remove(taskID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(taskID)
	if err != nil {
		return err
	}
	if s := c.at(r.clock.Now()).State; live(s) {
		return fmt.Errorf("fake runtime: the container of task %s is %s: stop it before removing it", taskID, s)
	}
	delete(r.containers, taskID)
	if i, ok := slices.BinarySearch(r.ids, taskID); ok {
		r.ids = slices.Delete(r.ids, i, i+1)
	}
	return nil
}

// Containers reports every container as of the clock's current time,
// ordered by task ID.
func (r *Runtime) Containers() ([]orchestrator.RuntimeContainer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	out := make([]orchestrator.RuntimeContainer, 0, len(r.containers))
	for _, id := range r.ids {
		out = append(out, r.containers[id].at(now))
	}
	return out, nil
}

// Crash makes the task's pending or running container exit now with
// exitCode: the simulator's "the task crashed" fault. Exit code 0 leaves it
// complete, as a process that exits cleanly but unasked.
func (r *Runtime) Crash(taskID string, exitCode int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(taskID)
	if err != nil {
		return err
	}
	now := r.clock.Now()
	if s := c.at(now).State; !live(s) {
		return fmt.Errorf("fake runtime: cannot crash the container of task %s: it is already %s", taskID, s)
	}
	c.setEnd(end{at: now, state: exitState(exitCode), exitCode: exitCode})
	return nil
}

// Secrets returns a copy of the secrets the task's container holds while it
// is pending or running, and nil once it has exited or if there is none: a
// real node drops them with the container's tmpfs. The simulator checks
// with it that secrets are only on nodes that run a task using them.
func (r *Runtime) Secrets(taskID string) map[string][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[taskID]
	if !ok {
		return nil
	}
	if !live(c.at(r.clock.Now()).State) {
		c.secrets = nil // exited for good: nothing can bring them back
		return nil
	}
	return orchestrator.CloneSecrets(c.secrets)
}

func (r *Runtime) get(taskID string) (*container, error) {
	c, ok := r.containers[taskID]
	if !ok {
		return nil, fmt.Errorf("%w (task %s)", orchestrator.ErrNoContainer, taskID)
	}
	return c, nil
}

// container is what the fake knows of one container: the instants at which
// it changes state, from which its state at any time follows.
type container struct {
	taskID, runtimeID string
	knobs             Knobs
	healthCheck       bool
	secrets           map[string][]byte
	createdAt         time.Time
	runningAt         time.Time // when StartLatency has passed
	startError        string    // set when it failed before running
	forced            *end      // decided at once: Crash, or Stop while pending
	stop              *end      // from Stop while running
}

// end is how and when a container exits.
type end struct {
	at       time.Time
	state    types.ContainerState
	exitCode int
}

// setEnd records an exit decided now. It is only called on a live
// container, so any other exit it has is later and this one wins.
func (c *container) setEnd(e end) { c.forced = &e }

// exit returns the first of the container's exits: its own (CrashAfter), a
// crash, or a stop. On a tie the container's own exit wins, since it is
// what the process reports.
func (c *container) exit() (end, bool) {
	var first *end
	consider := func(e *end) {
		if e != nil && (first == nil || e.at.Before(first.at)) {
			first = e
		}
	}
	if c.knobs.CrashAfter > 0 {
		own := end{at: c.runningAt.Add(c.knobs.CrashAfter), state: exitState(c.knobs.ExitCode), exitCode: c.knobs.ExitCode}
		consider(&own)
	}
	consider(c.forced)
	consider(c.stop)
	if first == nil {
		return end{}, false
	}
	return *first, true
}

// at reports the container as it is at now.
func (c *container) at(now time.Time) orchestrator.RuntimeContainer {
	rc := orchestrator.RuntimeContainer{TaskID: c.taskID, RuntimeID: c.runtimeID, Health: types.HealthUnknown}
	if c.startError != "" {
		rc.State, rc.Error, rc.FinishedAt = types.ContainerFailed, c.startError, c.createdAt
		return rc
	}
	e, exits := c.exit()
	// An exit before runningAt (a stop or crash while pending) means the
	// container never ran.
	if !now.Before(c.runningAt) && (!exits || !e.at.Before(c.runningAt)) {
		rc.StartedAt = c.runningAt
	}
	switch {
	case exits && !now.Before(e.at):
		rc.State, rc.ExitCode, rc.FinishedAt = e.state, e.exitCode, e.at
	case now.Before(c.runningAt):
		rc.State = types.ContainerPending
	default:
		rc.State = types.ContainerRunning
		switch {
		case c.knobs.Unhealthy:
			rc.Health = types.HealthUnhealthy
		case c.healthCheck:
			rc.Health = types.HealthHealthy
		}
	}
	return rc
}

func live(s types.ContainerState) bool {
	return s == types.ContainerPending || s == types.ContainerRunning
}

func exitState(exitCode int) types.ContainerState {
	if exitCode == 0 {
		return types.ContainerComplete
	}
	return types.ContainerFailed
}
