package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Duration is a time.Duration written as in Go: "250us", "2ms", "1.5s".
type Duration time.Duration

// UnmarshalJSON parses a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"250us\", \"2ms\" or \"1.5s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration: write it as \"250us\", \"2ms\" or \"1.5s\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Range is a [low, high] pair of durations; a value is drawn uniformly
// from it.
type Range [2]Duration

// Scenario is a scenario file: a cluster, timed steps, random faults drawn
// per seed, and what must hold. docs/scenarios.md describes the format.
type Scenario struct {
	// File is the path the scenario was loaded from.
	File        string `json:"-"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Cluster     struct {
		Managers int                          `json:"managers"`
		Workers  int                          `json:"workers"`
		Labels   map[string]map[string]string `json:"labels"`
	} `json:"cluster"`
	Network struct {
		Latency *Range  `json:"latency"`
		Loss    float64 `json:"loss"`
	} `json:"network"`
	Disk struct {
		Fsync *Range `json:"fsync"`
	} `json:"disk"`
	Runtime struct {
		Start *Duration `json:"start"`
		Stop  *Duration `json:"stop"`
	} `json:"runtime"`
	Dispatcher struct {
		TTL   *Duration `json:"ttl"`
		Grace *Duration `json:"grace"`
	} `json:"dispatcher"`
	Duration Duration `json:"duration"`
	Steps    []Step   `json:"steps"`
	Chaos    *Chaos   `json:"chaos"`
	Expect   Expect   `json:"expect"`
}

// Step is one timed action; exactly one of its actions is set.
type Step struct {
	At        Duration       `json:"at"`
	Service   *ServiceSpec   `json:"service,omitempty"`
	Scale     *ScaleSpec     `json:"scale,omitempty"`
	Volume    *VolumeSpec    `json:"volume,omitempty"`
	Secret    *SecretSpec    `json:"secret,omitempty"`
	Load      *LoadSpec      `json:"load,omitempty"`
	Crash     *CrashSpec     `json:"crash,omitempty"`
	Restart   *NodeSpec      `json:"restart,omitempty"`
	Partition *PartitionSpec `json:"partition,omitempty"`
	Heal      *struct{}      `json:"heal,omitempty"`
	DiskStall *StallSpec     `json:"disk-stall,omitempty"`
	CrashTask *NodeSpec      `json:"crash-task,omitempty"`
	Unhealthy *UnhealthySpec `json:"unhealthy,omitempty"`
	// UpdateSecret makes the secret's next version; DeleteSecret,
	// DeleteVolume and DeleteService remove what they name.
	UpdateSecret  *SecretSpec `json:"update-secret,omitempty"`
	DeleteSecret  *DeleteSpec `json:"delete-secret,omitempty"`
	DeleteVolume  *DeleteSpec `json:"delete-volume,omitempty"`
	DeleteService *DeleteSpec `json:"delete-service,omitempty"`
}

// ServiceSpec creates a service.
type ServiceSpec struct {
	Name        string   `json:"name"`
	Image       string   `json:"image"`
	Replicas    int      `json:"replicas"`
	Mode        string   `json:"mode"`
	Volumes     []string `json:"volumes"` // "NAME:/path[:ro]"
	Constraints []string `json:"constraints"`
	Secrets     []string `json:"secrets"` // names of secrets created by earlier steps
}

// ScaleSpec changes a service's replicas.
type ScaleSpec struct {
	Service  string `json:"service"`
	Replicas int    `json:"replicas"`
}

// VolumeSpec creates a local volume, on a node or (without one) placed
// with its first task.
type VolumeSpec struct {
	Name string `json:"name"`
	Node string `json:"node"`
}

// SecretSpec creates a secret, or makes its next version: its value is
// drawn from the seed and sealed with the run's seeded keyring.
type SecretSpec struct {
	Name string `json:"name"`
}

// DeleteSpec deletes a secret, volume or service by name. Force deletes a
// secret services use (they lose it; their running tasks keep its value)
// or a volume services mount (the replicated ones are scaled to 0).
type DeleteSpec struct {
	Name  string `json:"name"`
	Force bool   `json:"force"`
}

// LoadSpec writes Rate times a second, for For.
type LoadSpec struct {
	Rate int      `json:"rate"`
	For  Duration `json:"for"`
}

// CrashSpec crashes a node ("leader", "manager-N", "worker-N").
type CrashSpec struct {
	Node         string   `json:"node"`
	RestartAfter Duration `json:"restart-after"`
}

// PartitionSpec cuts the network into groups; unnamed nodes form one more.
type PartitionSpec struct {
	Groups    [][]string `json:"groups"`
	HealAfter Duration   `json:"heal-after"`
}

// StallSpec stalls a manager's disk.
type StallSpec struct {
	Node string   `json:"node"`
	For  Duration `json:"for"`
}

// UnhealthySpec makes the containers a worker starts, for For, fail their
// health checks.
type UnhealthySpec struct {
	Node string   `json:"node"`
	For  Duration `json:"for"`
}

// NodeSpec names a node.
type NodeSpec struct {
	Node string `json:"node"`
}

// Chaos draws random faults from the seed.
type Chaos struct {
	Faults int      `json:"faults"`
	Window Range    `json:"window"`
	Kinds  []string `json:"kinds"`
	// LatencyMax and Loss, when set, are drawn per seed from these ranges.
	LatencyMax *Range    `json:"latency-max"`
	Loss       []float64 `json:"loss"`
}

// Expect is what must hold at the end of a run, besides the invariants.
type Expect struct {
	ConvergeWithin Duration `json:"converge-within"`
	// WriteP99Under bounds the p99 of client write latency, in simulated
	// time.
	WriteP99Under Duration `json:"write-p99-under"`
	// LeaderChangesMin is how many elections after the first must happen.
	LeaderChangesMin int `json:"leader-changes-min"`
}

var chaosKinds = map[string]bool{"crash": true, "crash-leader": true, "partition": true, "disk-stall": true, "crash-task": true, "unhealthy": true}

// LoadScenario reads and checks a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	sc, err := ParseScenario(b)
	if err != nil {
		return nil, fmt.Errorf("sim: %s: %w", path, err)
	}
	if sc.Name == "" {
		sc.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	sc.File = path
	return sc, nil
}

// ParseScenario parses and checks a scenario document.
func ParseScenario(b []byte) (*Scenario, error) {
	var sc Scenario
	if err := yaml.UnmarshalStrict(b, &sc); err != nil {
		return nil, err
	}
	return &sc, sc.check()
}

func (sc *Scenario) check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if sc.Cluster.Managers < 1 || sc.Cluster.Managers > 7 {
		bad("cluster.managers is %d: use 1 to 7 (3 or 5 in production)", sc.Cluster.Managers)
	}
	if sc.Cluster.Workers < 0 {
		bad("cluster.workers is %d: use 0 or more", sc.Cluster.Workers)
	}
	if sc.Duration <= 0 {
		bad("duration is missing: say how long the faulty phase runs, e.g. 30s")
	}
	if sc.Network.Loss < 0 || sc.Network.Loss >= 1 {
		bad("network.loss is %g: use a probability in [0, 1)", sc.Network.Loss)
	}
	for i, st := range sc.Steps {
		n := 0
		for _, set := range []bool{st.Service != nil, st.Scale != nil, st.Volume != nil, st.Secret != nil, st.Load != nil,
			st.Crash != nil, st.Restart != nil, st.Partition != nil, st.Heal != nil, st.DiskStall != nil, st.CrashTask != nil,
			st.Unhealthy != nil, st.UpdateSecret != nil, st.DeleteSecret != nil, st.DeleteVolume != nil, st.DeleteService != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			bad("steps[%d] has %d actions: give each step exactly one of service, scale, volume, secret, update-secret, delete-secret, delete-volume, delete-service, load, crash, restart, partition, heal, disk-stall, crash-task, unhealthy", i, n)
		}
		for _, d := range []*DeleteSpec{st.DeleteSecret, st.DeleteVolume, st.DeleteService} {
			if d != nil && d.Name == "" {
				bad("steps[%d] deletes nothing: name what to delete, e.g. {name: db-data}", i)
			}
		}
		if d := st.DeleteService; d != nil && d.Force {
			bad("steps[%d] deletes service %s with force: a service is always deleted with its tasks, drop force", i, d.Name)
		}
		if u := st.Unhealthy; u != nil && u.For <= 0 {
			bad("steps[%d] makes %s unhealthy for %v: say for how long, e.g. for: 3s", i, u.Node, u.For.D())
		}
		if st.At.D() > sc.Duration.D() {
			bad("steps[%d] is at %v, after the duration %v", i, st.At.D(), sc.Duration.D())
		}
	}
	if c := sc.Chaos; c != nil {
		for _, k := range c.Kinds {
			if !chaosKinds[k] {
				bad("chaos.kinds has %q: use crash, crash-leader, partition, disk-stall, crash-task or unhealthy", k)
			}
		}
		if c.Faults > 0 && len(c.Kinds) == 0 {
			bad("chaos.kinds is empty: name the faults to draw")
		}
		if c.Loss != nil && len(c.Loss) != 2 {
			bad("chaos.loss is a [low, high] pair")
		}
	}
	if sc.Expect.ConvergeWithin <= 0 {
		bad("expect.converge-within is missing: bound how long the cluster may take to converge once faults heal")
	}
	return errors.Join(errs...)
}

// config is the cluster configuration the scenario asks for.
func (sc *Scenario) config(seed uint64) Config {
	cfg := DefaultConfig()
	cfg.Seed = seed
	cfg.Managers, cfg.Workers = sc.Cluster.Managers, sc.Cluster.Workers
	cfg.Labels = map[int]map[string]string{}
	for name, labels := range sc.Cluster.Labels {
		var i int
		if _, err := fmt.Sscanf(name, "worker-%d", &i); err == nil && i >= 1 {
			cfg.Labels[i-1] = labels
		}
	}
	if r := sc.Network.Latency; r != nil {
		cfg.Net.LatencyMin, cfg.Net.LatencyMax = r[0].D(), r[1].D()
	}
	cfg.Net.Loss = sc.Network.Loss
	if r := sc.Disk.Fsync; r != nil {
		cfg.Disk.FsyncMin, cfg.Disk.FsyncMax = r[0].D(), r[1].D()
	}
	if d := sc.Runtime.Start; d != nil {
		cfg.Runtime.StartLatency = d.D()
	}
	if d := sc.Runtime.Stop; d != nil {
		cfg.Runtime.StopLatency = d.D()
	}
	if d := sc.Dispatcher.TTL; d != nil {
		cfg.TTL = d.D()
	}
	if d := sc.Dispatcher.Grace; d != nil {
		cfg.Grace = d.D()
	}
	return cfg
}

// record builds the service record of a step, with the ID it is created
// under and the IDs of the secrets it uses.
func (s *ServiceSpec) record(id string, secretIDs []string, now time.Time) (*types.Service, error) {
	svc := &types.Service{
		ID: id, Name: s.Name, Image: s.Image, Replicas: s.Replicas, Secrets: secretIDs,
		Mode: types.ModeReplicated, DeployStrategy: types.DeployRolling,
		RestartPolicy: &types.RestartPolicy{Condition: types.RestartAlways, Delay: time.Second},
		Constraints:   s.Constraints, CreatedAt: now, UpdatedAt: now,
	}
	if svc.Image == "" {
		svc.Image = "busybox:1.36"
	}
	if s.Mode == string(types.ModeGlobal) {
		svc.Mode, svc.Replicas = types.ModeGlobal, 0
	}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			return nil, fmt.Errorf("volume %q: write NAME:/path[:ro]", v)
		}
		svc.Volumes = append(svc.Volumes, &types.VolumeMount{Source: parts[0], Target: parts[1], ReadOnly: len(parts) > 2 && parts[2] == "ro"})
	}
	return svc, svc.Validate()
}

// errNoLeaderToRead fails a step that reads the state (a scale) while no
// manager leads: the step waits for one, as an operator would try again.
var errNoLeaderToRead = errors.New("no leader to read the service from")

// stepCommand turns a step that changes the cluster's desired state into
// a command.
func (c *Cluster) stepCommand(st Step) (fsm.Command, error) {
	now := c.eng.Now()
	switch {
	case st.Service != nil:
		ids, err := c.secrets.ids(st.Service.Secrets)
		if err != nil {
			return nil, err
		}
		svc, err := st.Service.record(c.services.next(st.Service.Name), ids, now)
		if err != nil {
			return nil, err
		}
		return &fsm.CreateService{Service: svc}, nil
	case st.Scale != nil:
		l := c.Leader()
		if l == nil {
			return nil, errNoLeaderToRead
		}
		svc, err := l.store.GetServiceByName(st.Scale.Service)
		if err != nil {
			return nil, err
		}
		svc.Replicas, svc.UpdatedAt = st.Scale.Replicas, now
		return &fsm.UpdateService{Service: svc}, nil
	case st.DeleteService != nil:
		id, ok := c.services.current[st.DeleteService.Name]
		if !ok {
			return nil, fmt.Errorf("delete-service: no service %q was created", st.DeleteService.Name)
		}
		return &fsm.DeleteService{ID: id}, nil
	case st.Volume != nil:
		return &fsm.CreateVolume{Volume: &types.Volume{
			ID: volumeID(st.Volume.Name), Name: st.Volume.Name, Driver: "local", NodeID: st.Volume.Node,
			MountPath: "/var/lib/warren/volumes/" + st.Volume.Name, Options: map[string]string{}, CreatedAt: now,
		}}, nil
	case st.DeleteVolume != nil:
		return &fsm.DeleteVolume{ID: volumeID(st.DeleteVolume.Name), Force: st.DeleteVolume.Force}, nil
	case st.Secret != nil:
		return c.secrets.create(st.Secret.Name, now)
	case st.UpdateSecret != nil:
		return c.secrets.update(st.UpdateSecret.Name, now)
	case st.DeleteSecret != nil:
		return c.secrets.remove(st.DeleteSecret.Name, st.DeleteSecret.Force)
	}
	return nil, nil
}

// volumeID is the ID of the volume name: the scheduler derives a lazily
// created volume's ID from its name the same way, so a volume has one ID
// however it came to be.
func volumeID(name string) string { return "vol-" + name }

// serviceIDs gives each service a step creates its ID: "svc-NAME", then
// "svc-NAME.2" and so on for a service created again after a delete, so
// that a late retry of an old incarnation's write cannot touch the new one.
type serviceIDs struct {
	made    map[string]int    // incarnations so far, by name
	current map[string]string // the last ID made, by name
}

func (s *serviceIDs) next(name string) string {
	s.made[name]++
	id := "svc-" + name
	if n := s.made[name]; n > 1 {
		id = fmt.Sprintf("svc-%s.%d", name, n)
	}
	s.current[name] = id
	return id
}
