package api

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// POST /v1/apply: `warren apply`. The leader checks every document, works
// out on its own state what each changes (created, configured, unchanged),
// and commits every change as one fsm.Batch: all of them or none. An apply
// that changes nothing commits nothing, so applying the same files twice
// is harmless.

// The actions an apply reports for a document.
const (
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionUnchanged  = "unchanged"
)

// maxApplyBytes bounds an apply's body: room for a few secrets of the
// largest size (1 MiB each, base64 in JSON) besides the other documents.
const maxApplyBytes = 32 << 20

// ApplyRequest is POST /v1/apply.
type ApplyRequest struct {
	Documents []*Manifest `json:"documents"`
	// DryRun works out what would change, and stores nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// ApplyResult is the answer to an apply: one outcome per document, in the
// request's order.
type ApplyResult struct {
	DryRun   bool            `json:"dry_run"`
	Outcomes []*ApplyOutcome `json:"outcomes"`
}

// ApplyOutcome is what an apply did (or, in a dry run, would do) with one
// document.
type ApplyOutcome struct {
	Source   string `json:"source"`
	Document int    `json:"document"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	ID       string `json:"id"`
	// Action is ActionCreated, ActionConfigured or ActionUnchanged.
	Action string `json:"action"`
	// Changed names the fields a configured record changes, as the
	// document names them ("spec.image").
	Changed []string `json:"changed,omitempty"`
	// Version is a secret's version after the apply; UsedBy, for a secret
	// that gets a new one, the services whose running tasks keep theirs
	// until they are replaced.
	Version int      `json:"version,omitempty"`
	UsedBy  []string `json:"used_by,omitempty"`
}

// Apply applies the documents of req in one step, or works out what they
// would change (req.DryRun).
func (c *Client) Apply(ctx context.Context, req *ApplyRequest) (*ApplyResult, error) {
	// Retry-safe: applying the same documents again changes nothing more
	// (a secret whose value is already stored is unchanged).
	return fetch[*ApplyResult](ctx, c, send(http.MethodPost, Prefix+"/apply", req, true))
}

func serveApply(h *handler) {
	h.handle("POST "+Prefix+"/apply", h.admin, func(w http.ResponseWriter, r *http.Request) error {
		var req ApplyRequest
		if err := decodeBodyUpTo(w, r, &req, maxApplyBytes); err != nil {
			return err
		}
		res, err := h.apply(r.Context(), &req)
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, res)
	})
}

// checks collects the problems of one document.
type checks struct {
	m     *Manifest
	probs []*ManifestProblem
}

// add notes a problem with field, at the line of the field or of the
// nearest field above it that the file has.
func (c *checks) add(field, format string, args ...any) {
	p := &ManifestProblem{Field: field, Problem: fmt.Sprintf(format, args...)}
	for f := field; f != "" && p.Line == 0; f = parentField(f) {
		p.Line = c.m.Lines[f]
	}
	c.probs = append(c.probs, p)
}

// record notes the problems types.Validate found in a record, under the
// document's names for its fields.
func (c *checks) record(err error, names map[string]string) {
	if err == nil {
		return
	}
	var inv *types.InvalidError
	if !errors.As(err, &inv) {
		c.add("", "%v", err)
		return
	}
	for _, f := range inv.Fields {
		field := manifestField(f.Field, names)
		// A field this package checked first already says what is wrong,
		// in the file's terms (a duration as 5s, not in nanoseconds).
		if !slices.ContainsFunc(c.probs, func(p *ManifestProblem) bool { return p.Field == field }) {
			c.add(field, "%s", f.Problem)
		}
	}
}

var lastSegment = regexp.MustCompile(`(\.[^.\[]+|\[[^\]]*\])$`)

// parentField is the field that holds field: spec.volumes[0] for
// spec.volumes[0].mountPath, "" at the top.
func parentField(field string) string {
	parent := lastSegment.ReplaceAllString(field, "")
	if parent == field {
		return ""
	}
	return parent
}

// The document's names of the records' fields, where they are not the
// record's with a lower-case first letter under spec.
var (
	serviceFieldNames = map[string]string{
		"ID": "metadata.name", "Name": "metadata.name", "StopTimeout": "spec.stopGracePeriod",
		"DeployStrategy": "spec", "Networks": "spec",
		// Inside the lists and structs:
		"Source": "name", "Target": "mountPath",
		"CPULimit": "limits.cpus", "MemoryLimit": "limits.memory",
		"CPUReservation": "reservations.cpus", "MemoryReservation": "reservations.memory",
	}
	volumeFieldNames = map[string]string{"ID": "metadata.name", "Name": "metadata.name", "NodeID": "spec.node", "MountPath": "spec"}
)

var fieldSegment = regexp.MustCompile(`^[A-Za-z]+`)

// manifestField turns a record's field ("Volumes[0].Target") into the
// document's ("spec.volumes[0].mountPath").
func manifestField(field string, names map[string]string) string {
	head := fieldSegment.FindString(field)
	rest := field[len(head):]
	out, ok := names[head]
	if !ok {
		out = "spec." + lowerFirst(head)
	}
	if strings.Contains(out, ".") && !strings.HasPrefix(out, "spec.") || out == "spec" {
		return out // metadata.name, or spec as a whole
	}
	// .Sub and [i] segments.
	for rest != "" {
		switch rest[0] {
		case '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return out + rest
			}
			out, rest = out+rest[:end+1], rest[end+1:]
		case '.':
			seg := fieldSegment.FindString(rest[1:])
			if seg == "" {
				return out + rest
			}
			out, rest = out+"."+cmp.Or(names[seg], lowerFirst(seg)), rest[1+len(seg):]
		default:
			return out + rest
		}
	}
	return out
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToLower(r[0])
	return string(r)
}

// desired is what a document asks for, as far as it can be told without
// the cluster's state.
type desired struct {
	volume  *types.Volume  // Volume: without ID nor node
	node    string         // Volume: the node it names (ID or hostname)
	value   []byte         // Secret: the value, in clear
	service *types.Service // Service: without ID nor secrets
	secrets []string       // Service: the names of its secrets
}

// check checks everything about m that does not need the cluster's state,
// and returns what it asks for.
func (m *Manifest) check() (*desired, []*ManifestProblem) {
	c := &checks{m: m}
	m.headProblems(c)
	if len(c.probs) > 0 {
		return nil, stamp(m, c.probs)
	}
	want := &desired{}
	switch spec := m.Spec.(type) {
	case *VolumeManifest:
		want.volume, want.node = spec.check(c, m.Metadata.Name)
	case *SecretManifest:
		want.value = spec.check(c)
	case *ServiceManifest:
		want.service, want.secrets = spec.check(c, m.Metadata.Name)
	case nil:
		// Only a Volume may leave its spec out: every field has a default.
		if m.Kind == ManifestVolume {
			want.volume, want.node = (&VolumeManifest{}).check(c, m.Metadata.Name)
		} else {
			c.add("spec", "is missing: describe the %s under spec", strings.ToLower(m.Kind))
		}
	default:
		c.add("spec", "is a %T, not the spec of a %s", spec, m.Kind)
	}
	return want, stamp(m, c.probs)
}

// keys checks the keys of labels or options.
func (c *checks) keys(field string, kv map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		if strings.TrimSpace(k) == "" || strings.ContainsAny(k, "=\n\x00") {
			c.add(field, "key %q is not allowed: keys are not blank and hold no '=' nor line break", k)
		}
	}
}

func (s *VolumeManifest) check(c *checks, name string) (*types.Volume, string) {
	driver := cmp.Or(s.Driver, VolumeDriverLocal)
	if driver != VolumeDriverLocal {
		c.add("spec.driver", "%q is not supported: use %s, the only driver today (the volume's data lives on one node)", driver, VolumeDriverLocal)
	}
	c.keys("spec.labels", s.Labels)
	c.keys("spec.options", s.Options)
	if len(c.probs) > 0 {
		return nil, ""
	}
	// As `warren volume create` makes it.
	spec := &VolumeSpec{Name: name, Driver: driver, Labels: s.Labels, Options: s.Options}
	v, err := spec.volume()
	if err != nil {
		c.add("spec", "%v", err)
		return nil, ""
	}
	probe := types.Clone(v)
	probe.ID = "apply-check"
	c.record(probe.Validate(), volumeFieldNames)
	return v, s.Node
}

func (s *SecretManifest) check(c *checks) []byte {
	type entry struct{ field, value string }
	var entries []entry
	for _, k := range slices.Sorted(maps.Keys(s.Data)) {
		entries = append(entries, entry{keyPath("spec.data", k), s.Data[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(s.StringData)) {
		entries = append(entries, entry{keyPath("spec.stringData", k), s.StringData[k]})
	}
	switch {
	case len(entries) == 0:
		c.add("spec.data", "is empty: give the secret's value as one entry KEY: BASE64 (or under spec.stringData, KEY: VALUE in clear)")
		return nil
	case len(entries) > 1:
		fields := make([]string, len(entries))
		for i, e := range entries {
			fields[i] = e.field
		}
		c.add("spec", "has %d values (%s): a secret holds one value, as `warren secret create --from-literal KEY=VALUE` keeps VALUE: make a Secret document for each",
			len(entries), strings.Join(fields, ", "))
		return nil
	}
	e := entries[0]
	value := []byte(e.value)
	if strings.HasPrefix(e.field, "spec.data") {
		// Never quoted back: it is the secret. Whitespace is ignored, as a
		// long value may be folded over lines.
		text := strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, e.value)
		var err error
		if value, err = base64.StdEncoding.DecodeString(text); err != nil {
			if value, err = base64.RawStdEncoding.DecodeString(text); err != nil {
				c.add(e.field, "is not base64: encode the value (e.g. `printf %%s VALUE | base64`), or give it in clear under spec.stringData")
				return nil
			}
		}
	}
	switch {
	case len(value) == 0:
		c.add(e.field, "is empty: give the secret a value")
		return nil
	case len(value) > types.MaxSecretSize:
		c.add(e.field, "is %d bytes, more than the limit of %d (1 MiB): store large files in a volume instead", len(value), types.MaxSecretSize)
		return nil
	}
	return value
}

func (s *ServiceManifest) check(c *checks, name string) (*types.Service, []string) {
	mode := types.ServiceMode(cmp.Or(s.Mode, string(types.ModeReplicated)))
	// As `warren service create` makes it.
	svc := &types.Service{
		Name: name, Image: s.Image, Mode: mode, DeployStrategy: types.DeployRolling,
		Command: s.Command, Args: s.Args, WorkingDir: s.WorkingDir, User: s.User,
		Constraints: s.Constraints, Labels: maps.Clone(s.Labels),
	}
	switch {
	case s.Replicas != nil && mode == types.ModeGlobal:
		c.add("spec.replicas", "does not apply to a global service, which runs one task per node: leave it out")
	case s.Replicas != nil:
		svc.Replicas = *s.Replicas
	case mode == types.ModeReplicated:
		svc.Replicas = 1
	}
	envAt := map[string]int{}
	for i, e := range s.Env {
		f := fmt.Sprintf("spec.env[%d].name", i)
		switch j, dup := envAt[e.Name]; {
		case e.Name == "":
			c.add(f, "is empty: name the variable")
		case strings.ContainsAny(e.Name, "=\x00"):
			c.add(f, "%q is not a variable name: it may hold no '='", e.Name)
		case dup:
			c.add(f, "%q is already set by spec.env[%d]: set each variable once", e.Name, j)
		}
		envAt[e.Name] = i
		svc.Env = append(svc.Env, e.Name+"="+e.Value)
	}
	for _, p := range s.Ports {
		svc.Ports = append(svc.Ports, &types.PortMapping{ContainerPort: p.ContainerPort, HostPort: p.HostPort,
			Protocol: types.Protocol(cmp.Or(p.Protocol, string(types.ProtocolTCP)))})
	}
	for _, v := range s.Volumes {
		svc.Volumes = append(svc.Volumes, &types.VolumeMount{Source: v.Name, Target: v.MountPath, ReadOnly: v.ReadOnly})
	}
	secretAt := map[string]int{}
	for i, name := range s.Secrets {
		f := fmt.Sprintf("spec.secrets[%d]", i)
		if err := types.ValidateName(name); err != nil {
			c.add(f, "%v", err)
		} else if j, dup := secretAt[name]; dup {
			c.add(f, "%q is already given by spec.secrets[%d]: give each secret once", name, j)
		}
		secretAt[name] = i
	}
	nonNegative := func(field string, d Duration) {
		if d < 0 {
			c.add(field, "is %s: must be 0 or more", time.Duration(d))
		}
	}
	if p := s.RestartPolicy; p != nil {
		nonNegative("spec.restartPolicy.delay", p.Delay)
		svc.RestartPolicy = &types.RestartPolicy{Condition: types.RestartCondition(cmp.Or(p.Condition, string(types.RestartAlways))),
			MaxAttempts: p.MaxAttempts, Delay: time.Duration(p.Delay)}
	}
	if r := s.Resources; r != nil {
		var res types.ResourceRequirements
		if l := r.Limits; l != nil {
			res.CPULimit, res.MemoryLimit = l.CPUs, int64(l.Memory)
		}
		if l := r.Reservations; l != nil {
			res.CPUReservation, res.MemoryReservation = l.CPUs, int64(l.Memory)
		}
		if res != (types.ResourceRequirements{}) {
			svc.Resources = &res
		}
	}
	if h := s.HealthCheck; h != nil {
		nonNegative("spec.healthCheck.interval", h.Interval)
		nonNegative("spec.healthCheck.timeout", h.Timeout)
		nonNegative("spec.healthCheck.startPeriod", h.StartPeriod)
		// The defaults of service create's --health-* flags.
		hc := &types.HealthCheck{Type: types.HealthCheckType(h.Type), Port: h.Port, Path: h.Path, Command: h.Command,
			Interval: cmp.Or(time.Duration(h.Interval), 30*time.Second), Timeout: cmp.Or(time.Duration(h.Timeout), 30*time.Second),
			Retries: cmp.Or(h.Retries, 3), StartPeriod: time.Duration(h.StartPeriod)}
		if hc.Type == "" {
			c.add("spec.healthCheck.type", "is missing: use http, tcp or exec")
		}
		if hc.Type == types.HealthCheckHTTP && hc.Path == "" {
			hc.Path = "/"
		}
		svc.HealthCheck = hc
	}
	switch g := time.Duration(s.StopGracePeriod); {
	case g < 0 || g%time.Second != 0:
		c.add("spec.stopGracePeriod", "is %s: use whole seconds, e.g. 10s", g)
	default:
		svc.StopTimeout = int(g / time.Second)
	}
	if u := s.UpdateConfig; u != nil {
		nonNegative("spec.updateConfig.delay", u.Delay)
		svc.UpdateConfig = &types.UpdateConfig{Parallelism: 1, Delay: time.Duration(u.Delay), FailureAction: types.FailureAction(u.FailureAction)}
		if u.Parallelism != nil {
			svc.UpdateConfig.Parallelism = *u.Parallelism
		}
	}
	probe := types.Clone(svc)
	probe.ID = "apply-check"
	c.record(probe.Validate(), serviceFieldNames)
	return svc, s.Secrets
}

// applyItem is one document on its way through an apply.
type applyItem struct {
	m    *Manifest
	want *desired
	out  *ApplyOutcome
	// What the plan found and decided; cmd is nil when unchanged.
	oldSecret *types.Secret
	cmd       fsm.Command
}

// applyState is what of the leader's state an apply needs: the records its
// documents name, by name, and the nodes its volumes name, by the key
// given.
type applyState struct {
	volumes  map[string]*types.Volume
	secrets  map[string]*types.Secret
	services map[string]*types.Service
	nodes    map[string]*types.Node
	nodeErr  map[string]string
	// all the services, for the users of a secret that changes.
	allServices []*types.Service
}

func (h *handler) apply(ctx context.Context, req *ApplyRequest) (*ApplyResult, error) {
	if len(req.Documents) == 0 {
		return nil, fmt.Errorf("%w: apply: no document: send at least one", ErrBadRequest)
	}
	items := make([]*applyItem, len(req.Documents))
	var probs []*ManifestProblem
	for i, m := range req.Documents {
		if m == nil {
			return nil, fmt.Errorf("%w: apply: document %d of the request is null", ErrBadRequest, i+1)
		}
		want, p := m.check()
		items[i] = &applyItem{m: m, want: want}
		probs = append(probs, p...)
	}
	defer func() {
		for _, it := range items {
			if it.want != nil {
				clear(it.want.value)
			}
		}
	}()
	probs = append(probs, duplicates(items)...)
	if len(probs) > 0 {
		return nil, &ManifestError{Problems: probs}
	}

	// Plan on the leader's state, as of a linearizable read: what is
	// there now decides created, configured or unchanged.
	st, err := view(ctx, h.Backend, false, func(rd state.Reader) (*applyState, error) { return readApplyState(rd, items) })
	if err != nil {
		return nil, err
	}
	now := h.Clock.Now()
	if probs := plan(items, st, now); len(probs) > 0 {
		return nil, &ManifestError{Problems: probs}
	}
	for _, it := range items {
		if it.oldSecret == nil {
			continue
		}
		same, err := h.Backend.SecretMatches(ctx, it.oldSecret, it.want.value)
		if err != nil {
			return nil, fmt.Errorf("apply: %s: compare secret %s with its stored value: %w", it.m.Source, it.m.Metadata.Name, err)
		}
		if !same {
			it.out.Action, it.out.Version = ActionConfigured, it.oldSecret.CurrentVersion()+1
			it.out.UsedBy = secretUsers(it.oldSecret.ID, st.allServices, items)
		}
	}

	res := &ApplyResult{DryRun: req.DryRun, Outcomes: make([]*ApplyOutcome, len(items))}
	changes := 0
	for i, it := range items {
		res.Outcomes[i] = it.out
		if it.out.Action != ActionUnchanged {
			changes++
		}
	}
	if changes == 0 || req.DryRun {
		for _, o := range res.Outcomes {
			if o.Action == ActionCreated {
				o.ID = "" // made up by the plan: the record does not exist
			}
		}
		return res, nil
	}
	if err := h.sealSecrets(ctx, items, now); err != nil {
		return nil, err
	}
	// One command: volumes first, then secrets, then the services that
	// mount and use them.
	batch := &fsm.Batch{}
	for _, kind := range kindNames {
		for _, it := range items {
			if it.m.Kind == kind && it.cmd != nil {
				batch.Commands = append(batch.Commands, it.cmd)
			}
		}
	}
	if err := h.Backend.Apply(ctx, batch); err != nil {
		if errors.Is(err, ErrOutcomeUnknown) {
			return nil, fmt.Errorf("apply: %w: run the apply again, which changes only what is still to change", err)
		}
		return nil, fmt.Errorf("apply: nothing was applied: %w", err)
	}
	return res, nil
}

// duplicates refuses two documents for the same record.
func duplicates(items []*applyItem) []*ManifestProblem {
	var probs []*ManifestProblem
	first := map[[2]string]*Manifest{}
	for _, it := range items {
		key := [2]string{it.m.Kind, it.m.Metadata.Name}
		if prev, dup := first[key]; dup {
			c := &checks{m: it.m}
			c.add("metadata.name", "%q is already the name of %s document %d: give each %s one document",
				it.m.Metadata.Name, prev.Source, prev.Document, strings.ToLower(it.m.Kind))
			probs = append(probs, stamp(it.m, c.probs)...)
			continue
		}
		first[key] = it.m
	}
	return probs
}

func readApplyState(rd state.Reader, items []*applyItem) (*applyState, error) {
	st := &applyState{volumes: map[string]*types.Volume{}, secrets: map[string]*types.Secret{},
		services: map[string]*types.Service{}, nodes: map[string]*types.Node{}, nodeErr: map[string]string{}}
	lookup := func(name string, get func(string) error) error {
		if err := get(name); err != nil && !errors.Is(err, state.ErrNotFound) {
			return err
		}
		return nil
	}
	secret := func(name string) error {
		s, err := rd.GetSecretByName(name)
		if err == nil {
			st.secrets[name] = s
		}
		return err
	}
	for _, it := range items {
		name := it.m.Metadata.Name
		var err error
		switch it.m.Kind {
		case ManifestVolume:
			err = lookup(name, func(name string) error {
				v, err := rd.GetVolumeByName(name)
				if err == nil {
					st.volumes[name] = v
				}
				return err
			})
			if key := it.want.node; err == nil && key != "" {
				err = resolveNode(rd, key, st)
			}
		case ManifestSecret:
			err = lookup(name, secret)
		case ManifestService:
			err = lookup(name, func(name string) error {
				s, err := rd.GetServiceByName(name)
				if err == nil {
					st.services[name] = s
				}
				return err
			})
			for _, ref := range it.want.secrets {
				if err == nil {
					err = lookup(ref, secret)
				}
			}
		}
		if err != nil {
			return nil, err
		}
	}
	all, err := rd.ListServices()
	st.allServices = all
	return st, err
}

// resolveNode finds the node a volume names by ID, else by hostname
// (findNode); a key that names no single node is a problem of the
// document, noted in st.nodeErr.
func resolveNode(rd state.Reader, key string, st *applyState) error {
	n, err := findNode(rd, key)
	switch {
	case err == nil:
		st.nodes[key] = n
	case errors.Is(err, state.ErrNotFound):
		st.nodeErr[key] = fmt.Sprintf("%q is not a node: give a node's ID or hostname (warren node ls)", key)
	case errors.Is(err, ErrBadRequest):
		st.nodeErr[key] = strings.TrimPrefix(err.Error(), ErrBadRequest.Error()+": ")
	default:
		return err
	}
	return nil
}

// plan decides what each document changes on st, and the command that
// changes it; secrets that exist are compared later, with their key.
func plan(items []*applyItem, st *applyState, now time.Time) []*ManifestProblem {
	var probs []*ManifestProblem
	// Secrets first: the services of the same apply use their IDs.
	newSecrets := map[string]string{}
	for _, it := range items {
		if it.m.Kind != ManifestSecret {
			continue
		}
		name := it.m.Metadata.Name
		it.out = outcome(it.m)
		if old := st.secrets[name]; old != nil {
			it.oldSecret = old
			it.out.ID, it.out.Action, it.out.Version = old.ID, ActionUnchanged, old.CurrentVersion()
			continue
		}
		it.out.ID, it.out.Action, it.out.Version = NewID(), ActionCreated, 1
		newSecrets[name] = it.out.ID
	}
	for _, it := range items {
		c := &checks{m: it.m}
		switch it.m.Kind {
		case ManifestVolume:
			planVolume(c, it, st, now)
		case ManifestService:
			planService(c, it, st, newSecrets, now)
		}
		probs = append(probs, stamp(it.m, c.probs)...)
	}
	return probs
}

func outcome(m *Manifest) *ApplyOutcome {
	return &ApplyOutcome{Source: m.Source, Document: m.Document, Kind: m.Kind, Name: m.Metadata.Name}
}

func planVolume(c *checks, it *applyItem, st *applyState, now time.Time) {
	it.out = outcome(it.m)
	want := it.want.volume
	var node *types.Node
	if key := it.want.node; key != "" {
		if msg, bad := st.nodeErr[key]; bad {
			c.add("spec.node", "%s", msg)
			return
		}
		node = st.nodes[key]
	}
	old := st.volumes[want.Name]
	if old == nil {
		v := types.Clone(want)
		v.ID, v.CreatedAt = NewID(), now
		if node != nil {
			v.NodeID = node.ID
		}
		it.out.ID, it.out.Action, it.cmd = v.ID, ActionCreated, &fsm.CreateVolume{Volume: v}
		return
	}
	it.out.ID, it.out.Action = old.ID, ActionUnchanged
	if old.Driver != want.Driver {
		c.add("spec.driver", "is %s, but volume %s exists with driver %s, which cannot change: delete the volume (warren volume rm) and apply again",
			want.Driver, old.Name, old.Driver)
		return
	}
	next := types.Clone(old)
	if node != nil && old.NodeID != node.ID {
		if old.NodeID != "" {
			c.add("spec.node", "is %s, but volume %s lives on node %s: a local volume's data cannot move; delete the volume (its data goes with it) and apply again, or leave spec.node out",
				it.want.node, old.Name, old.NodeID)
			return
		}
		next.NodeID = node.ID
		it.out.Changed = append(it.out.Changed, "spec.node")
	}
	if !sameMap(old.Labels, want.Labels) {
		next.Labels = maps.Clone(want.Labels)
		it.out.Changed = append(it.out.Changed, "spec.labels")
	}
	if !sameMap(old.Options, want.Options) {
		next.Options = maps.Clone(want.Options)
		it.out.Changed = append(it.out.Changed, "spec.options")
	}
	if len(it.out.Changed) > 0 {
		it.out.Action, it.cmd = ActionConfigured, &fsm.UpdateVolume{Volume: next}
	}
}

// sameMap is maps.Equal with no map and an empty one the same.
func sameMap(a, b map[string]string) bool { return len(a) == 0 && len(b) == 0 || maps.Equal(a, b) }

func planService(c *checks, it *applyItem, st *applyState, newSecrets map[string]string, now time.Time) {
	it.out = outcome(it.m)
	svc := types.Clone(it.want.service)
	for i, name := range it.want.secrets {
		switch s, id := st.secrets[name], newSecrets[name]; {
		case s != nil:
			svc.Secrets = append(svc.Secrets, s.ID)
		case id != "":
			svc.Secrets = append(svc.Secrets, id)
		default:
			c.add(fmt.Sprintf("spec.secrets[%d]", i), "%q is not a secret: create it (warren secret create) or add a Secret document for it to this apply", name)
		}
	}
	if len(c.probs) > 0 {
		return
	}
	old := st.services[svc.Name]
	if old == nil {
		svc.ID, svc.CreatedAt, svc.UpdatedAt = NewID(), now, now
		it.out.ID, it.out.Action, it.cmd = svc.ID, ActionCreated, &fsm.CreateService{Service: svc}
		c.record(svc.Validate(), serviceFieldNames)
		return
	}
	// What the document does not say is the service's own: its identity,
	// its times, and how many times it was forced to recreate its tasks.
	svc.ID, svc.SchemaVersion, svc.CreatedAt, svc.UpdatedAt, svc.ForceUpdate = old.ID, old.SchemaVersion, old.CreatedAt, old.UpdatedAt, old.ForceUpdate
	it.out.ID, it.out.Action = old.ID, ActionUnchanged
	it.out.Changed = serviceChanges(old, svc)
	if len(it.out.Changed) == 0 {
		return
	}
	svc.UpdatedAt = now
	it.out.Action, it.cmd = ActionConfigured, &fsm.UpdateService{Service: svc}
	c.record(svc.Validate(), serviceFieldNames)
}

// serviceChanges names the fields in which want differs from old, as the
// document names them; an empty list and none are the same.
func serviceChanges(old, want *types.Service) []string {
	a, b := reflect.ValueOf(old).Elem(), reflect.ValueOf(want).Elem()
	var out []string
	for i := range a.NumField() {
		x, y := a.Field(i), b.Field(i)
		if (x.Kind() == reflect.Slice || x.Kind() == reflect.Map) && x.Len() == 0 && y.Len() == 0 {
			continue
		}
		if reflect.DeepEqual(x.Interface(), y.Interface()) {
			continue
		}
		name := manifestField(a.Type().Field(i).Name, serviceFieldNames)
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// secretUsers names the services that use secret id, in the state or in
// the apply, sorted.
func secretUsers(id string, all []*types.Service, items []*applyItem) []string {
	var names []string
	for _, s := range all {
		if slices.Contains(s.Secrets, id) {
			names = append(names, s.Name)
		}
	}
	for _, it := range items {
		var svc *types.Service
		switch c := it.cmd.(type) {
		case *fsm.CreateService:
			svc = c.Service
		case *fsm.UpdateService:
			svc = c.Service
		}
		if svc != nil && slices.Contains(svc.Secrets, id) {
			names = append(names, svc.Name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// sealSecrets seals the value of each secret the apply creates or changes
// (as POST and PUT /v1/secrets do) and makes its command.
func (h *handler) sealSecrets(ctx context.Context, items []*applyItem, now time.Time) error {
	for _, it := range items {
		if it.m.Kind != ManifestSecret || it.out.Action == ActionUnchanged {
			continue
		}
		if old := it.oldSecret; old != nil {
			next, err := nextSecretVersion(ctx, h, old, it.want.value)
			if err != nil {
				return fmt.Errorf("apply: seal secret %s: %w", old.Name, err)
			}
			it.out.Version = next.Version
			it.cmd = &fsm.UpdateSecret{Secret: next, IfVersion: old.CurrentVersion()}
			continue
		}
		id := it.out.ID
		sealed, err := h.Backend.SealSecret(ctx, types.SealedFor(id, 1), it.want.value)
		if err != nil {
			return fmt.Errorf("apply: seal secret %s: %w", it.m.Metadata.Name, err)
		}
		it.cmd = &fsm.CreateSecret{Secret: &types.Secret{ID: id, Name: it.m.Metadata.Name, Data: sealed, CreatedAt: now, UpdatedAt: now}}
	}
	return nil
}
