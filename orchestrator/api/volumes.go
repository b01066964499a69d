package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// Volumes have endpoints of their own rather than the generic record ones:
// a volume is created from a spec (its node given by ID or hostname), is
// described with what uses it and how much it holds, and its delete says
// what it stopped. Nodes have one more: they learn which volumes are pinned
// to them, and report their sizes.

// VolumeDriverLocal is the one volume driver today: the data lives in a
// directory on one node's disk, and the volume's tasks run on that node.
const VolumeDriverLocal = "local"

// volumeRoot is where a local volume's directory is on a node with the
// default data directory; the scheduler gives volumes it makes the same.
const volumeRoot = "/var/lib/warren/volumes/"

// VolumeSpec is POST /v1/volumes: `warren volume create`.
type VolumeSpec struct {
	Name string `json:"name"`
	// Driver is "local" when empty, and the only one accepted.
	Driver  string            `json:"driver,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Options map[string]string `json:"options,omitempty"`
	// Node, an ID or a hostname, pins the volume to that node at once;
	// empty leaves it to the first task that mounts it.
	Node string `json:"node,omitempty"`
}

// VolumeInfo is what the API tells of a volume.
type VolumeInfo struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Driver string `json:"driver"`
	// MountPoint is the volume's directory on its node, as the node
	// reported it (the default data directory's until it has).
	MountPoint string `json:"mount_point"`
	// NodeID and Node (its hostname) are where the volume lives; empty
	// until it is placed.
	NodeID string `json:"node_id,omitempty"`
	Node   string `json:"node,omitempty"`
	// Size is the bytes of its files as its node last measured them, at
	// SizeAt; SizeAt is zero until the node has measured it.
	Size      int64             `json:"size"`
	SizeAt    time.Time         `json:"size_at,omitzero"`
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	// UsedBy names the services that mount it, UsedByTasks the tasks
	// meant to run that mount it (IDs).
	UsedBy      []string `json:"used_by"`
	UsedByTasks []string `json:"used_by_tasks"`
}

// Measured reports whether the volume's node has measured its size.
func (v *VolumeInfo) Measured() bool { return !v.SizeAt.IsZero() }

// VolumeDeletion is the answer to DELETE /v1/volumes/{key}: what went.
type VolumeDeletion struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	NodeID string `json:"node_id,omitempty"`
	Node   string `json:"node,omitempty"`
	// Stopped are the services a forced delete scaled to 0 replicas.
	Stopped []string `json:"stopped"`
}

// VolumeSync is POST /v1/nodes/{id}/volumes: a node asks which local
// volumes are pinned to it, and reports what its volumes hold.
type VolumeSync struct {
	// Held are the IDs of the volumes whose directory the node made and
	// keeps; the answer says which of them are gone.
	Held []string `json:"held,omitempty"`
	// Sizes are the bytes in the node's volume directories, by volume ID,
	// as measured since its last report.
	Sizes map[string]int64 `json:"sizes,omitempty"`
	// Root is the absolute directory the node keeps its volumes under
	// (<data-dir>/volumes): a volume's mount point is Root/NAME.
	Root string `json:"root,omitempty"`
}

// NodeVolumes answers a VolumeSync.
type NodeVolumes struct {
	// Volumes are the volumes pinned to the node, by name.
	Volumes []agent.Volume `json:"volumes"`
	// Gone are the IDs of Held no longer on the node, as a linearizable
	// read on the leader saw it: the node may remove their directories.
	Gone []string `json:"gone,omitempty"`
}

// volumeUsers is what a description of volumes needs besides them.
type volumeUsers struct {
	rd    state.Reader
	nodes map[string]*types.Node
	svcs  []*types.Service
	tasks map[string][]*types.Container // by node
}

func newVolumeUsers(rd state.Reader) (*volumeUsers, error) {
	nodes, err := rd.ListNodes()
	if err != nil {
		return nil, err
	}
	svcs, err := rd.ListServices()
	if err != nil {
		return nil, err
	}
	u := &volumeUsers{rd: rd, nodes: map[string]*types.Node{}, svcs: svcs, tasks: map[string][]*types.Container{}}
	for _, n := range nodes {
		u.nodes[n.ID] = n
	}
	return u, nil
}

func mounts(ms []*types.VolumeMount, name string) bool {
	return slices.ContainsFunc(ms, func(m *types.VolumeMount) bool { return m != nil && m.Source == name })
}

// services are the services that mount v.
func (u *volumeUsers) services(v *types.Volume) []*types.Service {
	var out []*types.Service
	for _, s := range u.svcs {
		if mounts(s.Volumes, v.Name) {
			out = append(out, s)
		}
	}
	return out
}

// hostname is the hostname of node id ("" if it has none, or is gone).
func (u *volumeUsers) hostname(id string) string {
	if n := u.nodes[id]; n != nil {
		return n.Hostname
	}
	return ""
}

func (u *volumeUsers) info(v *types.Volume) (*VolumeInfo, error) {
	info := &VolumeInfo{
		ID: v.ID, Name: v.Name, Driver: v.Driver, MountPoint: v.MountPath,
		NodeID: v.NodeID, Node: u.hostname(v.NodeID),
		Size: v.Size, SizeAt: v.SizeAt, Labels: v.Labels, Options: v.Options, CreatedAt: v.CreatedAt,
		UsedBy: []string{}, UsedByTasks: []string{},
	}
	for _, s := range u.services(v) {
		info.UsedBy = append(info.UsedBy, s.Name)
	}
	slices.Sort(info.UsedBy)
	// A task that mounts a local volume runs on its node, and only a
	// placed volume has tasks.
	if v.NodeID != "" {
		tasks, ok := u.tasks[v.NodeID]
		if !ok {
			var err error
			if tasks, err = u.rd.ListContainersByNode(v.NodeID); err != nil {
				return nil, err
			}
			u.tasks[v.NodeID] = tasks
		}
		for _, t := range tasks {
			if t.DesiredState == types.ContainerRunning && mounts(t.Mounts, v.Name) {
				info.UsedByTasks = append(info.UsedByTasks, t.ID)
			}
		}
		slices.Sort(info.UsedByTasks)
	}
	return info, nil
}

// findVolume finds a volume by ID, else by name.
func findVolume(rd state.Reader, key string) (*types.Volume, error) {
	v, err := rd.GetVolume(key)
	if errors.Is(err, state.ErrNotFound) {
		v, err = rd.GetVolumeByName(key)
	}
	if errors.Is(err, state.ErrNotFound) {
		return nil, fmt.Errorf("%w: no volume with ID or name %q: list them with `warren volume ls`", state.ErrNotFound, key)
	}
	return v, err
}

// volume builds the record spec describes, or says what is wrong with it.
func (spec *VolumeSpec) volume() (*types.Volume, error) {
	if err := types.ValidateName(spec.Name); err != nil {
		return nil, fmt.Errorf("%w: volume name: %v", types.ErrInvalid, err)
	}
	driver := spec.Driver
	if driver == "" {
		driver = VolumeDriverLocal
	}
	if driver != VolumeDriverLocal {
		return nil, fmt.Errorf("%w: volume driver %q is not supported: use %s, the only driver today (the volume's data lives on one node)",
			types.ErrInvalid, driver, VolumeDriverLocal)
	}
	for _, m := range []struct {
		what string
		kv   map[string]string
	}{{"label", spec.Labels}, {"option", spec.Options}} {
		for k := range m.kv {
			if strings.TrimSpace(k) == "" || strings.ContainsAny(k, "=\n") {
				return nil, fmt.Errorf("%w: volume %s key %q: use KEY=VALUE with a KEY of its own", types.ErrInvalid, m.what, k)
			}
		}
	}
	opts := maps.Clone(spec.Options)
	if opts == nil {
		opts = map[string]string{}
	}
	var labels map[string]string
	if len(spec.Labels) > 0 {
		labels = maps.Clone(spec.Labels)
	}
	return &types.Volume{Name: spec.Name, Driver: driver, MountPath: volumeRoot + spec.Name, Options: opts, Labels: labels}, nil
}

func serveVolumes(h *handler) {
	all := recordsPath(types.KindVolume)
	one := all + "/{key}"

	h.handle("GET "+all, h.admin, func(w http.ResponseWriter, r *http.Request) error {
		infos, err := read(h, r, func(rd state.Reader) ([]*VolumeInfo, error) {
			vols, err := rd.ListVolumes()
			if err != nil {
				return nil, err
			}
			u, err := newVolumeUsers(rd)
			if err != nil {
				return nil, err
			}
			out := make([]*VolumeInfo, len(vols))
			for i, v := range vols {
				if out[i], err = u.info(v); err != nil {
					return nil, err
				}
			}
			slices.SortFunc(out, func(a, b *VolumeInfo) int { return strings.Compare(a.Name, b.Name) })
			return out, nil
		})
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, orEmpty(infos))
	})

	h.handle("GET "+one, h.admin, func(w http.ResponseWriter, r *http.Request) error {
		info, err := read(h, r, func(rd state.Reader) (*VolumeInfo, error) {
			v, err := findVolume(rd, r.PathValue("key"))
			if err != nil {
				return nil, err
			}
			u, err := newVolumeUsers(rd)
			if err != nil {
				return nil, err
			}
			return u.info(v)
		})
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, info)
	})

	h.handle("POST "+all, h.admin, func(w http.ResponseWriter, r *http.Request) error {
		var spec VolumeSpec
		if err := decodeBody(w, r, &spec); err != nil {
			return err
		}
		v, err := spec.volume()
		if err != nil {
			return err
		}
		var node *types.Node
		if spec.Node != "" {
			// The leader's state: a node that just joined is there.
			node, err = view(r.Context(), h.Backend, false, func(rd state.Reader) (*types.Node, error) { return findNode(rd, spec.Node) })
			if err != nil {
				return fmt.Errorf("volume %s: --node %s: %w", spec.Name, spec.Node, err)
			}
			v.NodeID = node.ID
		}
		v.ID, v.CreatedAt = NewID(), h.Clock.Now()
		if err := h.Backend.Apply(r.Context(), &fsm.CreateVolume{Volume: v}); err != nil {
			return err
		}
		info := &VolumeInfo{ID: v.ID, Name: v.Name, Driver: v.Driver, MountPoint: v.MountPath, NodeID: v.NodeID,
			Labels: v.Labels, Options: v.Options, CreatedAt: v.CreatedAt, UsedBy: []string{}, UsedByTasks: []string{}}
		if node != nil {
			info.Node = node.Hostname
		}
		return reply(w, http.StatusCreated, info)
	})

	h.handle("DELETE "+one, h.admin, func(w http.ResponseWriter, r *http.Request) error {
		force, err := boolParam(r, "force")
		if err != nil {
			return err
		}
		type target struct {
			vol   *types.Volume
			host  string
			users []*types.Service
		}
		t, err := view(r.Context(), h.Backend, false, func(rd state.Reader) (target, error) {
			v, err := findVolume(rd, r.PathValue("key"))
			if err != nil {
				return target{}, err
			}
			u, err := newVolumeUsers(rd)
			if err != nil {
				return target{}, err
			}
			return target{v, u.hostname(v.NodeID), u.services(v)}, nil
		})
		if err != nil {
			return err
		}
		var names, stopped []string
		for _, s := range t.users {
			names = append(names, s.Name)
			if s.Mode != types.ModeGlobal && s.Replicas > 0 {
				stopped = append(stopped, s.Name)
			}
		}
		if len(names) > 0 && !force {
			return inUseError(t.vol.Name, names)
		}
		// The state machine checks the users again, in the same step as
		// the delete: one added since the read above is not missed.
		if err := h.Backend.Apply(r.Context(), &fsm.DeleteVolume{ID: t.vol.ID, Force: force}); err != nil {
			return err
		}
		return reply(w, http.StatusOK, &VolumeDeletion{ID: t.vol.ID, Name: t.vol.Name, NodeID: t.vol.NodeID, Node: t.host, Stopped: orEmpty(stopped)})
	})

	// A node's own: answered from this manager's state, which may lag the
	// leader's; what a node may delete is confirmed by a linearizable read.
	h.handle("POST "+Prefix+"/nodes/{id}/volumes", h.nodeItself, func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		var req VolumeSync
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
		type answer struct {
			ans    *NodeVolumes
			report *fsm.ReportVolumes
		}
		look := func(stale bool) (answer, error) {
			return view(r.Context(), h.Backend, stale, func(rd state.Reader) (answer, error) {
				vols, err := rd.ListVolumes()
				if err != nil {
					return answer{}, err
				}
				pinned, gone := dispatcher.NodeVolumes(id, vols, req.Held)
				return answer{&NodeVolumes{Volumes: orEmpty(pinned), Gone: gone},
					dispatcher.VolumeReport(id, vols, req.Root, req.Sizes, h.Clock.Now())}, nil
			})
		}
		a, err := look(true)
		if err == nil && len(a.ans.Gone) > 0 {
			// A lagging manager may not have a volume the node made
			// yet: only the leader's whole state may say it is gone.
			a, err = look(false)
		}
		if err != nil {
			return err
		}
		if a.report != nil {
			if err := h.Backend.Apply(r.Context(), a.report); err != nil {
				return err
			}
		}
		return reply(w, http.StatusOK, a.ans)
	})
}

// inUseError refuses to delete a volume services mount, naming them and
// the ways out.
func inUseError(volume string, services []string) error {
	what, them := "service "+services[0], "it"
	if len(services) > 1 {
		what, them = "services "+strings.Join(services, ", "), "them"
	}
	return fmt.Errorf("%w: volume %s is used by %s: remove %s (warren service rm) or pass --force, which scales %s to 0 replicas and deletes the volume's data",
		fsm.ErrInUse, volume, what, them, them)
}

// CreateVolume creates the volume spec describes and returns what the API
// tells of it.
func (c *Client) CreateVolume(ctx context.Context, spec *VolumeSpec) (*VolumeInfo, error) {
	// Not retry-safe: a create sent twice is refused the second time
	// (name taken), after the first was stored.
	return fetch[*VolumeInfo](ctx, c, send(http.MethodPost, recordsPath(types.KindVolume), spec, false))
}

// ListVolumes lists the volumes, by name; stale reads the answering
// manager's state, which may lag the leader's but needs no leader.
func (c *Client) ListVolumes(ctx context.Context, stale bool) ([]*VolumeInfo, error) {
	return fetch[[]*VolumeInfo](ctx, c, get(recordsPath(types.KindVolume), staleQuery(stale)))
}

// GetVolume describes the volume with ID or name key.
func (c *Client) GetVolume(ctx context.Context, key string) (*VolumeInfo, error) {
	return fetch[*VolumeInfo](ctx, c, get(recordsPath(types.KindVolume)+"/"+url.PathEscape(key), nil))
}

// DeleteVolume deletes the volume with ID or name key; its node then
// removes its data. One a service mounts is refused (fsm.ErrInUse) unless
// force, which scales the replicated services that mount it to 0 in the
// same step (a global one still refuses).
func (c *Client) DeleteVolume(ctx context.Context, key string, force bool) (*VolumeDeletion, error) {
	path := recordsPath(types.KindVolume) + "/" + url.PathEscape(key)
	if force {
		path += "?force=true"
	}
	return fetch[*VolumeDeletion](ctx, c, send(http.MethodDelete, path, nil, true))
}

// SyncVolumes is a node's volume report (nodeID must be the client's own):
// it returns the volumes pinned to the node and those of req.Held that are
// gone, and records the sizes that changed.
func (c *Client) SyncVolumes(ctx context.Context, nodeID string, req *VolumeSync) (*NodeVolumes, error) {
	// Retry-safe: a report sent twice records the same sizes.
	return fetch[*NodeVolumes](ctx, c, send(http.MethodPost, Prefix+"/nodes/"+url.PathEscape(nodeID)+"/volumes", req, true))
}
