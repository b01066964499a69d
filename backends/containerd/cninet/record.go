package cninet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A record is kept in StateDir/containers/<id>.json from before CNI ADD
// until after CNI DEL. It lets Teardown run DEL with the ports ADD
// published (portmap removes nothing it is not told about), and it
// survives a reboot, which empties NetnsDir (on /run) but not host-local's
// allocations: Attached still lists the id, so the sweep frees its IP.
type record struct {
	Ports []recordPort `json:"ports"`
}

// recordPort is Port as stored, so renaming Port's fields does not orphan
// the records of a running node.
type recordPort struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

const recordExt = ".json"

func (n *Network) recordsDir() string {
	return filepath.Join(n.cfg.StateDir, "containers", n.cfg.Owner)
}

func (n *Network) recordPath(id string) string {
	return filepath.Join(n.recordsDir(), id+recordExt)
}

func (n *Network) writeRecord(id string, ports []Port) error {
	rec := record{Ports: make([]recordPort, 0, len(ports))}
	for _, p := range ports {
		rec.Ports = append(rec.Ports, recordPort(p))
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("cninet: encode record of %s: %w", id, err)
	}
	if err := os.MkdirAll(n.recordsDir(), 0o755); err != nil {
		return fmt.Errorf("cninet: create records directory: %w", err)
	}
	// Write then rename: a crash leaves the old record or the new one,
	// never half of one.
	tmp := n.recordPath(id) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("cninet: write record of %s: %w", id, err)
	}
	if err := os.Rename(tmp, n.recordPath(id)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("cninet: write record of %s: %w", id, err)
	}
	return nil
}

// readRecord returns the record of id; ok is false if there is none.
func (n *Network) readRecord(id string) (rec record, ok bool, err error) {
	b, err := os.ReadFile(n.recordPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, fmt.Errorf("cninet: read record of %s: %w", id, err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return record{}, false, fmt.Errorf("cninet: record %s is corrupt (%v): remove it, then remove by hand the iptables rules of %s", n.recordPath(id), err, id)
	}
	return rec, true, nil
}

func (n *Network) removeRecord(id string) error {
	if err := os.Remove(n.recordPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cninet: remove record of %s: %w", id, err)
	}
	return nil
}

// recordedIDs returns the ids that have a record.
func (n *Network) recordedIDs() ([]string, error) {
	entries, err := os.ReadDir(n.recordsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cninet: list records: %w", err)
	}
	var ids []string
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), recordExt)
		if ok && e.Type().IsRegular() && checkID(id) == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (rec record) ports() []Port {
	ports := make([]Port, 0, len(rec.Ports))
	for _, p := range rec.Ports {
		ports = append(ports, Port(p))
	}
	return ports
}
