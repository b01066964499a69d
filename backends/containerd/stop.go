package containerd

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"

	"github.com/warren-orchestrator/warren/orchestrator"
)

// Stop sends SIGTERM to the task's container and SIGKILL once timeout has
// passed. A container still being made is not started. Stopping one that
// has exited, or was asked to stop already, changes nothing.
func (r *Runtime) Stop(taskID string, timeout time.Duration) error {
	r.mu.Lock()
	if s, ok := r.starting[taskID]; ok {
		if !s.stop {
			s.stop, s.timeout = true, timeout
		}
		r.mu.Unlock()
		return nil
	}
	_, ended := r.ended[taskID]
	r.mu.Unlock()
	if ended {
		return nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, rpcTimeout)
	defer cancel()
	ctr, labels, err := r.load(ctx, taskID)
	if err != nil {
		return err
	}
	if labels[labelStop] != "" {
		return nil
	}
	t, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil // never started, or gone with containerd's state: not live
	}
	if err != nil {
		return fmt.Errorf("containerd runtime: stop task %s: %w", taskID, err)
	}
	st, err := t.Status(ctx)
	if err != nil {
		return fmt.Errorf("containerd runtime: stop task %s: %w", taskID, err)
	}
	if st.Status == containerd.Stopped {
		return nil
	}
	timeout = max(timeout, 0)
	deadline := r.cfg.Clock.Now().Add(timeout)
	if _, err := ctr.SetLabels(ctx, map[string]string{labelStop: deadline.Format(time.RFC3339Nano)}); err != nil {
		return fmt.Errorf("containerd runtime: stop task %s: %w", taskID, err)
	}
	exited, err := t.Wait(r.ctx)
	if err != nil {
		return fmt.Errorf("containerd runtime: stop task %s: %w", taskID, err)
	}
	if st.Status == containerd.Created {
		// Never started: nothing to ask politely.
		return r.kill(t, syscall.SIGKILL)
	}
	if err := r.kill(t, syscall.SIGTERM); err != nil {
		return fmt.Errorf("containerd runtime: stop task %s: %w", taskID, err)
	}
	r.wg.Go(func() {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-exited:
		case <-r.ctx.Done():
			// Containers sees the deadline in the label and kills then.
		case <-timer.C:
			r.cfg.Log.Info("stop timeout: SIGKILL", "task", taskID, "timeout", timeout)
			if err := r.kill(t, syscall.SIGKILL); err != nil {
				r.cfg.Log.Warn("SIGKILL at the stop timeout", "task", taskID, "err", err)
			}
		}
	})
	return nil
}

// load returns the task's container and its labels; ErrNoContainer if
// there is none of this node's.
func (r *Runtime) load(ctx context.Context, taskID string) (containerd.Container, map[string]string, error) {
	ctr, err := r.client.LoadContainer(ctx, ContainerID(taskID))
	if errdefs.IsNotFound(err) {
		return nil, nil, fmt.Errorf("%w (task %s)", orchestrator.ErrNoContainer, taskID)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("containerd runtime: task %s: %w", taskID, err)
	}
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("containerd runtime: task %s: %w", taskID, err)
	}
	if labels[LabelNode] != r.cfg.NodeID {
		return nil, nil, fmt.Errorf("%w (task %s: its container is node %s's)", orchestrator.ErrNoContainer, taskID, labels[LabelNode])
	}
	return ctr, labels, nil
}

func (r *Runtime) kill(t containerd.Task, sig syscall.Signal) error {
	ctx, cancel := context.WithTimeout(r.ctx, rpcTimeout)
	defer cancel()
	err := t.Kill(ctx, sig, containerd.WithKillAll)
	if errdefs.IsNotFound(err) || err != nil && strings.Contains(err.Error(), "process already finished") {
		return nil
	}
	return err
}

// Remove deletes a stopped container, its task, its snapshot and its
// secrets tmpfs. Its log is kept for LogRetention.
func (r *Runtime) Remove(taskID string) error {
	r.mu.Lock()
	_, busy := r.starting[taskID]
	_, ended := r.ended[taskID]
	if ended {
		delete(r.ended, taskID)
	}
	r.mu.Unlock()
	switch {
	case busy:
		return fmt.Errorf("containerd runtime: the container of task %s is still starting: stop it before removing it", taskID)
	case ended:
		return nil
	}
	id := ContainerID(taskID)
	ctx, cancel := context.WithTimeout(r.ctx, rpcTimeout)
	defer cancel()
	ctr, _, err := r.load(ctx, taskID)
	if err != nil {
		return err
	}
	t, err := ctr.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("containerd runtime: remove task %s: %w", taskID, err)
	default:
		st, err := t.Status(ctx)
		if err != nil {
			return fmt.Errorf("containerd runtime: remove task %s: %w", taskID, err)
		}
		if st.Status == containerd.Running || st.Status == containerd.Paused || st.Status == containerd.Pausing {
			return fmt.Errorf("containerd runtime: the container of task %s is running: stop it before removing it", taskID)
		}
		if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("containerd runtime: remove task %s: %w", taskID, err)
		}
	}
	r.unmountSecrets(id)
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("containerd runtime: remove task %s: %w", taskID, err)
	}
	r.teardownNetwork(id)
	now := r.cfg.Clock.Now()
	_ = os.Chtimes(r.LogPath(taskID), now, now) // the retention counts from here
	return nil
}

// removeSnapshot removes the snapshot named id, if there is one.
func (r *Runtime) removeSnapshot(ctx context.Context, id string) {
	err := r.client.SnapshotService(r.cfg.Snapshotter).Remove(ctx, id)
	if err != nil && !errdefs.IsNotFound(err) {
		r.cfg.Log.Warn("remove a left-over snapshot", "snapshot", id, "err", err)
	}
}

// deleteContainer undoes a container that never ran.
func (r *Runtime) deleteContainer(ctr containerd.Container) {
	// Even after Close: a start that Close cut short leaves nothing.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), rpcTimeout)
	defer cancel()
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		r.cfg.Log.Warn("delete a container that did not start", "container", ctr.ID(), "err", err)
	}
}
