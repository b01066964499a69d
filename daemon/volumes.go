package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// VolumeLedgerFile, in the data directory, lists the volume directories
// this node made (volume ID -> name): the only ones it ever removes.
const VolumeLedgerFile = "volumes.json"

// volumeMeasureBeats is how many heartbeat intervals pass between two
// measurements of the volumes' sizes: 10 s at the default heartbeat.
const volumeMeasureBeats = 10

// volumeLedger is the ledger file's content.
type volumeLedger struct {
	Volumes map[string]agent.HeldVolume `json:"volumes"`
}

// volumes keeps the directories of the local volumes pinned to this node
// (agent.PlanVolumes decides): it makes them when the managers list them,
// removes the ones it made once their volume is deleted and no container
// mounts them, and measures them every measureEvery, off the heartbeat
// path, reporting the sizes with its next exchange.
type volumes struct {
	root         string // <data-dir>/volumes
	ledgerPath   string
	measureEvery time.Duration
	log          *slog.Logger

	ledger  map[string]agent.HeldVolume // nil until loaded
	unsaved bool                        // ledger differs from the file
	// pinned are the volumes of the last answer, what is measured; asked
	// the names newMounts asked about out of turn.
	pinned []agent.Volume
	asked  map[string]bool

	mu        sync.Mutex
	sizes     map[string]int64 // measured, not yet reported
	measuring bool
	measured  time.Time // when the last measurement started
}

func newVolumes(dataDir string, measureEvery time.Duration, log *slog.Logger) *volumes {
	return &volumes{
		root: filepath.Join(dataDir, VolumesDir), ledgerPath: filepath.Join(dataDir, VolumeLedgerFile),
		measureEvery: measureEvery, log: log, sizes: map[string]int64{},
	}
}

// sync exchanges with the managers (which volumes are pinned here, which of
// those this node made are gone, the sizes measured since the last
// exchange), then makes and removes directories as agent.PlanVolumes says.
// inUse says whether a container of this node may mount a volume.
func (v *volumes) sync(ctx context.Context, c *api.Client, nodeID string, inUse func(string) bool) error {
	if v.ledger == nil {
		l, err := v.load()
		if err != nil {
			return err
		}
		v.ledger = l
	}
	v.mu.Lock()
	sizes := maps.Clone(v.sizes)
	v.mu.Unlock()
	root, err := filepath.Abs(v.root)
	if err != nil {
		root = "" // the managers keep the default mount points
	}
	ans, err := c.SyncVolumes(ctx, nodeID, &api.VolumeSync{Held: agent.Held(v.ledger), Sizes: sizes, Root: root})
	if err != nil {
		return err
	}
	v.mu.Lock()
	for id, n := range sizes {
		if v.sizes[id] == n {
			delete(v.sizes, id) // reported; a newer measurement stays
		}
	}
	v.mu.Unlock()

	plan := agent.PlanVolumes(v.ledger, ans.Volumes, ans.Gone, inUse)
	ledger, changed := plan.Ledger, !maps.Equal(plan.Ledger, v.ledger)
	var errs []error
	for _, vol := range plan.Ensure {
		made, err := v.makeDir(vol.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if made {
			ledger[vol.ID] = agent.HeldVolume{Name: vol.Name}
			changed = true
			v.log.Info("volume directory made", "volume", vol.Name, "path", filepath.Join(v.root, vol.Name))
		}
	}
	for _, vol := range plan.Remove {
		if err := v.removeDir(vol.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(ledger, vol.ID)
		changed = true
		v.log.Info("volume deleted: its directory is removed", "volume", vol.Name, "path", filepath.Join(v.root, vol.Name))
	}
	if changed || v.unsaved {
		v.unsaved = false
		if err := v.save(ledger); err != nil {
			v.unsaved = true
			// Kept in memory and written again on the next exchange; a
			// restart before that reads the older file, which lacks the
			// directories made now: those are then never removed.
			errs = append(errs, err)
		}
		v.ledger = ledger
	}
	v.pinned = plan.Ensure
	v.measure(ctx)
	return errors.Join(errs...)
}

// newMounts reports whether a task assigned to run on nodeID mounts a
// volume the last answer did not list, once per volume name (a name the
// next answer does not list either is not asked about again out of turn).
func (v *volumes) newMounts(nodeID string, assigned []agent.Assignment) bool {
	found := false
	for _, as := range assigned {
		t := as.Task
		if t == nil || t.NodeID != nodeID || t.DesiredState != types.ContainerRunning {
			continue
		}
		for _, m := range t.Mounts {
			if m == nil || v.asked[m.Source] || slices.ContainsFunc(v.pinned, func(p agent.Volume) bool { return p.Name == m.Source }) {
				continue
			}
			if v.asked == nil {
				v.asked = map[string]bool{}
			}
			v.asked[m.Source], found = true, true
		}
	}
	return found
}

// validVolumeName guards the paths made from names the managers send.
func validVolumeName(name string) error {
	if err := types.ValidateName(name); err != nil {
		return fmt.Errorf("daemon: volume %q: %w", name, err)
	}
	return nil
}

// makeDir makes the volume's directory, and reports whether it did (false:
// it was there).
func (v *volumes) makeDir(name string) (bool, error) {
	if err := validVolumeName(name); err != nil {
		return false, err
	}
	if err := os.MkdirAll(v.root, 0o755); err != nil {
		return false, fmt.Errorf("daemon: volume %s: %w", name, err)
	}
	err := os.Mkdir(filepath.Join(v.root, name), 0o755)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrExist):
		return false, nil
	}
	return false, fmt.Errorf("daemon: volume %s: cannot make its directory: %w", name, err)
}

func (v *volumes) removeDir(name string) error {
	if err := validVolumeName(name); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(v.root, name)); err != nil {
		return fmt.Errorf("daemon: volume %s: cannot remove its directory: %w", name, err)
	}
	return nil
}

func (v *volumes) load() (map[string]agent.HeldVolume, error) {
	data, err := os.ReadFile(v.ledgerPath)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]agent.HeldVolume{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("daemon: read %s: %w", v.ledgerPath, err)
	}
	var l volumeLedger
	if err := json.Unmarshal(data, &l); err != nil {
		// Refusing keeps every directory: without the ledger, none is
		// known to be this node's to remove.
		return nil, fmt.Errorf("daemon: %s is damaged (%v): volume directories are kept, none is made or removed; move the file away to start a new ledger (the directories listed in it are then never removed)",
			v.ledgerPath, err)
	}
	if l.Volumes == nil {
		l.Volumes = map[string]agent.HeldVolume{}
	}
	return l.Volumes, nil
}

func (v *volumes) save(ledger map[string]agent.HeldVolume) error {
	data, err := json.MarshalIndent(volumeLedger{Volumes: ledger}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(v.ledgerPath, append(data, '\n'), 0o600)
}

// measure starts measuring the pinned volumes' directories in the
// background when measureEvery has passed since the last time; the sizes
// go with the next exchange.
func (v *volumes) measure(ctx context.Context) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.measuring || len(v.pinned) == 0 || time.Since(v.measured) < v.measureEvery {
		return
	}
	v.measuring, v.measured = true, time.Now()
	vols := v.pinned
	go func() {
		got := map[string]int64{}
		for _, vol := range vols {
			if validVolumeName(vol.Name) != nil {
				continue
			}
			n, err := dirSize(ctx, filepath.Join(v.root, vol.Name))
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, fs.ErrNotExist) {
					v.log.Warn("could not measure a volume", "volume", vol.Name, "err", err)
				}
				continue
			}
			got[vol.ID] = n
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		maps.Copy(v.sizes, got)
		v.measuring = false
	}()
}

// dirSize is the apparent size of the regular files under dir, as
// `du --apparent-size` counts them but without the directories themselves.
// Symbolic links are not followed; files it may not read are skipped.
func dirSize(ctx context.Context, dir string) (int64, error) {
	if _, err := os.Lstat(dir); err != nil {
		return 0, err
	}
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			// A directory it may not read, or a file removed meanwhile:
			// count what can be counted.
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total, err
}
