package api

import (
	"bytes"
	"cmp"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// The files `warren apply` reads: YAML documents of apiVersion warren.io/v1,
// kinds Volume, Secret and Service, several per file. The CLI reads them
// here (strictly: an unknown field or a value of the wrong type is an
// error naming the field), checks what it can without the cluster, and
// sends them to the leader as Manifests, which checks them again, resolves
// their references and applies them in one step (apply.go).

// ManifestAPIVersion is the apiVersion of every document `warren apply`
// takes.
const ManifestAPIVersion = "warren.io/v1"

// The kinds of document `warren apply` takes.
const (
	ManifestVolume  = "Volume"
	ManifestSecret  = "Secret"
	ManifestService = "Service"
)

// Manifest is one document of a file given to `warren apply`, as it goes to
// the leader (POST /v1/apply): what it says, and where it was, for the
// messages about it.
type Manifest struct {
	// Source names the file ("stdin" for standard input) and Document is
	// the document's position in it, from 1.
	Source     string           `json:"source"`
	Document   int              `json:"document"`
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Metadata   ManifestMetadata `json:"metadata"`
	// Spec is a *VolumeManifest, *SecretManifest or *ServiceManifest, as
	// Kind says (nil for any other kind).
	Spec any `json:"spec"`
	// Lines maps fields ("spec.image") to their line in the file, for
	// messages only.
	Lines map[string]int `json:"lines,omitempty"`
}

// ManifestMetadata names the record a document describes.
type ManifestMetadata struct {
	Name string `json:"name"`
}

// VolumeManifest is the spec of a Volume document.
type VolumeManifest struct {
	// Driver is "local" when empty, and the only one accepted.
	Driver  string            `json:"driver,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Options map[string]string `json:"options,omitempty"`
	// Node, an ID or a hostname, pins the volume to that node; empty
	// leaves it to the first task that mounts it.
	Node string `json:"node,omitempty"`
}

// SecretManifest is the spec of a Secret document: one key, whose value
// is the secret's (as `secret create --from-literal KEY=VALUE` keeps
// VALUE), base64 in Data or in clear in StringData.
type SecretManifest struct {
	Data       map[string]string `json:"data,omitempty"`
	StringData map[string]string `json:"stringData,omitempty"`
}

// ServiceManifest is the spec of a Service document. What it leaves out
// takes the value `warren service create` gives it.
type ServiceManifest struct {
	Image string `json:"image"`
	// Replicas is 1 when left out (a replicated service); a global
	// service takes none.
	Replicas   *int            `json:"replicas,omitempty"`
	Mode       string          `json:"mode,omitempty"` // replicated (default) or global
	Command    []string        `json:"command,omitempty"`
	Args       []string        `json:"args,omitempty"`
	WorkingDir string          `json:"workingDir,omitempty"`
	User       string          `json:"user,omitempty"`
	Env        []EnvManifest   `json:"env,omitempty"`
	Ports      []PortManifest  `json:"ports,omitempty"`
	Volumes    []MountManifest `json:"volumes,omitempty"`
	// Secrets are names: of secrets in the cluster, or of Secret
	// documents of the same apply.
	Secrets         []string               `json:"secrets,omitempty"`
	Labels          map[string]string      `json:"labels,omitempty"`
	Constraints     []string               `json:"constraints,omitempty"`
	RestartPolicy   *RestartPolicyManifest `json:"restartPolicy,omitempty"`
	Resources       *ResourcesManifest     `json:"resources,omitempty"`
	HealthCheck     *HealthCheckManifest   `json:"healthCheck,omitempty"`
	StopGracePeriod Duration               `json:"stopGracePeriod,omitempty"`
	UpdateConfig    *UpdateConfigManifest  `json:"updateConfig,omitempty"`
}

// EnvManifest is one environment variable of a service.
type EnvManifest struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// PortManifest publishes a container port; HostPort 0 publishes none.
type PortManifest struct {
	ContainerPort int    `json:"containerPort"`
	HostPort      int    `json:"hostPort,omitempty"`
	Protocol      string `json:"protocol,omitempty"` // tcp (default) or udp
}

// MountManifest mounts the volume Name at MountPath.
type MountManifest struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// RestartPolicyManifest says when a stopped task is replaced.
type RestartPolicyManifest struct {
	Condition   string   `json:"condition,omitempty"` // always (default), on-failure, none
	MaxAttempts int      `json:"maxAttempts,omitempty"`
	Delay       Duration `json:"delay,omitempty"`
}

// ResourcesManifest are a task's limits and what the scheduler sets aside
// for it.
type ResourcesManifest struct {
	Limits       *ResourceAmounts `json:"limits,omitempty"`
	Reservations *ResourceAmounts `json:"reservations,omitempty"`
}

// ResourceAmounts is CPU in cores and memory in bytes (64M, 1G, ...).
type ResourceAmounts struct {
	CPUs   float64  `json:"cpus,omitempty"`
	Memory ByteSize `json:"memory,omitempty"`
}

// HealthCheckManifest is a probe of each task, as types.HealthCheck.
type HealthCheckManifest struct {
	Type        string   `json:"type"` // http, tcp or exec
	Port        int      `json:"port,omitempty"`
	Path        string   `json:"path,omitempty"`    // http; "/" when empty
	Command     []string `json:"command,omitempty"` // exec
	Interval    Duration `json:"interval,omitempty"`
	Timeout     Duration `json:"timeout,omitempty"`
	Retries     int      `json:"retries,omitempty"`
	StartPeriod Duration `json:"startPeriod,omitempty"`
}

// UpdateConfigManifest tunes a rolling update.
type UpdateConfigManifest struct {
	Parallelism   *int     `json:"parallelism,omitempty"` // 1 when left out; 0: all at once
	Delay         Duration `json:"delay,omitempty"`
	FailureAction string   `json:"failureAction,omitempty"`
}

// Duration is a time.Duration written as Go writes one: 30s, 1m30s.
type Duration time.Duration

// MarshalText writes d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what time.ParseDuration reads.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration: use a number and a unit, e.g. 30s or 1m30s", b)
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a number of bytes, written as such or with a unit in powers
// of 1024, as Docker's --memory: 512, 64K, 64M, 1G, 1GiB.
type ByteSize int64

// MarshalText writes the number of bytes.
func (s ByteSize) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(s), 10)), nil }

// UnmarshalText reads a number of bytes with an optional unit.
func (s *ByteSize) UnmarshalText(b []byte) error {
	n, err := types.ParseSize(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a size: use bytes, or a number and a unit, e.g. 64M or 1G", b)
	}
	*s = ByteSize(n)
	return nil
}

// newSpec returns an empty spec of kind, nil for a kind Warren does not
// apply.
func newSpec(kind string) any {
	switch kind {
	case ManifestVolume:
		return &VolumeManifest{}
	case ManifestSecret:
		return &SecretManifest{}
	case ManifestService:
		return &ServiceManifest{}
	}
	return nil
}

// UnmarshalJSON reads the spec as the type its kind says, strictly, as the
// rest of the API reads bodies.
func (m *Manifest) UnmarshalJSON(data []byte) error {
	type plain Manifest
	var raw struct {
		plain
		Spec json.RawMessage `json:"spec"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	*m = Manifest(raw.plain)
	m.Spec = newSpec(m.Kind)
	if m.Spec == nil || len(raw.Spec) == 0 || string(raw.Spec) == "null" {
		return nil
	}
	dec = json.NewDecoder(bytes.NewReader(raw.Spec))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m.Spec); err != nil {
		return fmt.Errorf("%s: document %d (%s %s): spec: %w", m.Source, m.Document, m.Kind, m.Metadata.Name, err)
	}
	return nil
}

// ManifestProblem is one thing wrong with one document: with a field when
// it is about one (as the file names it: "spec.volumes[0].mountPath"), and
// the field's line in the file when known.
type ManifestProblem struct {
	Source   string `json:"source"`
	Document int    `json:"document,omitempty"` // 0: the file as a whole
	Kind     string `json:"kind,omitempty"`
	Name     string `json:"name,omitempty"`
	Field    string `json:"field,omitempty"`
	// Problem reads after the field: `"data" is not an absolute path`.
	Problem string `json:"problem"`
	Line    int    `json:"line,omitempty"`
}

// String is the problem as one line: `service.yaml: document 2 (Service
// postgres): spec.volumes[0].mountPath "data" is not an absolute path: start
// it with / (line 12)`.
func (p *ManifestProblem) String() string {
	var b strings.Builder
	b.WriteString(p.Source)
	if p.Document > 0 {
		fmt.Fprintf(&b, ": document %d", p.Document)
		switch {
		case p.Kind != "" && p.Name != "":
			fmt.Fprintf(&b, " (%s %s)", p.Kind, p.Name)
		case p.Kind != "":
			fmt.Fprintf(&b, " (%s)", p.Kind)
		}
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + " ")
	}
	b.WriteString(p.Problem)
	if p.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", p.Line)
	}
	return b.String()
}

// ManifestError lists every problem found in the documents of an apply;
// none of them was applied. It wraps types.ErrInvalid.
type ManifestError struct {
	Problems []*ManifestProblem
}

func (e *ManifestError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "  " + p.String()
	}
	return "apply: nothing was applied; fix the files and apply again:\n" + strings.Join(lines, "\n")
}

// Unwrap lets errors.Is(err, types.ErrInvalid) match.
func (e *ManifestError) Unwrap() error { return types.ErrInvalid }

// ParseManifests reads the YAML documents of one file (source names it in
// messages), strictly, and checks each as far as it can without the
// cluster. Empty documents are skipped but counted, so that "document 3"
// is the third of the file. The error, if any, is a *ManifestError listing
// every problem found.
func ParseManifests(source string, data []byte) ([]*Manifest, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*Manifest
	var probs []*ManifestProblem
	n := 0
	for {
		n++
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The parser cannot go on past a syntax error.
			probs = append(probs, &ManifestProblem{Source: source, Document: n,
				Problem: "is not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")})
			break
		}
		if len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
			continue
		}
		m, p := parseDocument(source, n, doc.Content[0])
		if len(p) == 0 {
			var want *desired
			want, p = m.check()
			if want != nil {
				clear(want.value) // a secret's, checked here and sent as written
			}
		}
		probs = append(probs, p...)
		out = append(out, m)
	}
	if len(probs) > 0 {
		return nil, &ManifestError{Problems: probs}
	}
	if len(out) == 0 {
		return nil, &ManifestError{Problems: []*ManifestProblem{{Source: source,
			Problem: "holds no document: give YAML documents of apiVersion " + ManifestAPIVersion + ", kind Volume, Secret or Service"}}}
	}
	return out, nil
}

// yamlReader decodes YAML nodes into Go values strictly, by their JSON
// names, noting every problem with its field's path and line.
type yamlReader struct {
	probs []*ManifestProblem
	lines map[string]int
}

func (d *yamlReader) fail(n *yaml.Node, field, format string, args ...any) {
	d.probs = append(d.probs, &ManifestProblem{Field: field, Problem: fmt.Sprintf(format, args...), Line: n.Line})
}

// describe says what a node holds, for "is X: want Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// value decodes n into v (addressable), at path.
func (d *yamlReader) value(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // left out
	}
	if v.Kind() != reflect.Pointer && reflect.PointerTo(v.Type()).Implements(textUnmarshaler) {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "is %s: want a single value", describe(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path)
	case reflect.Struct:
		d.object(n, v, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "is %s: want a mapping of KEY: VALUE", describe(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		d.pairs(n, path, func(key *yaml.Node, val *yaml.Node) {
			elem := reflect.New(v.Type().Elem()).Elem()
			p := keyPath(path, key.Value)
			d.lines[p] = key.Line
			d.value(val, elem, p)
			v.SetMapIndex(reflect.ValueOf(key.Value), elem)
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "is %s: want a list", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		// Any scalar, as written: `value: 5432` is the string "5432".
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "is %s: want a string", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			d.fail(n, path, "is %s: want a whole number", describe(n))
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil {
			d.fail(n, path, "is %s: want a number", describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "is %s: want true or false", describe(n))
			return
		}
		v.SetBool(b)
	default:
		// A type the manifest structs do not use: a bug here, not in the file.
		d.fail(n, path, "cannot be read (a %s): report this as a bug of warren", v.Type())
	}
}

// pairs calls fn with each key and value of mapping n, refusing keys that
// are not strings and keys given twice.
func (d *yamlReader) pairs(n *yaml.Node, path string, fn func(key, val *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			d.fail(key, path, "has a key that is %s: keys are strings", describe(key))
			continue
		}
		if line, dup := seen[key.Value]; dup {
			d.fail(key, keyPath(path, key.Value), "is given twice (first on line %d): give it once", line)
			continue
		}
		seen[key.Value] = key.Line
		fn(key, val)
	}
}

// object decodes mapping n into struct v by the fields' JSON names.
func (d *yamlReader) object(n *yaml.Node, v reflect.Value, path string) {
	fields := map[string]int{}
	var names []string
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			fields[name] = i
			names = append(names, name)
		}
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "is %s: want a mapping with the fields %s", describe(n), strings.Join(names, ", "))
		return
	}
	d.pairs(n, path, func(key, val *yaml.Node) {
		p := keyPath(path, key.Value)
		i, ok := fields[key.Value]
		if !ok {
			d.fail(key, p, "is not a field Warren knows: use %s", oneOfNames(names))
			return
		}
		d.lines[p] = key.Line
		d.value(val, v.Field(i), p)
	})
}

// oneOfNames is "a, b or c".
func oneOfNames(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// keyPath is the path of key under path: spec.labels.app, or
// spec.labels["a.b"] for a key a dot would make ambiguous.
func keyPath(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// parseDocument reads one document's mapping into a Manifest; the problems
// name source, n, and the document's kind and name when it has them.
func parseDocument(source string, n int, root *yaml.Node) (*Manifest, []*ManifestProblem) {
	m := &Manifest{Source: source, Document: n}
	d := &yamlReader{lines: map[string]int{}}
	if root.Kind != yaml.MappingNode {
		d.fail(root, "", "is %s, not a mapping: a document has apiVersion, kind, metadata and spec", describe(root))
		return m, stamp(m, d.probs)
	}
	var spec *yaml.Node
	d.pairs(root, "", func(key, val *yaml.Node) {
		d.lines[key.Value] = key.Line
		switch key.Value {
		case "apiVersion":
			d.value(val, reflect.ValueOf(&m.APIVersion).Elem(), key.Value)
		case "kind":
			d.value(val, reflect.ValueOf(&m.Kind).Elem(), key.Value)
		case "metadata":
			d.value(val, reflect.ValueOf(&m.Metadata).Elem(), key.Value)
		case "spec":
			spec = val
		default:
			d.fail(key, keyPath("", key.Value), "is not a field Warren knows: use apiVersion, kind, metadata or spec")
		}
	})
	m.Spec = newSpec(m.Kind)
	if spec != nil && m.Spec != nil {
		d.value(spec, reflect.ValueOf(m.Spec).Elem(), "spec")
	}
	m.Lines = d.lines
	return m, stamp(m, d.probs)
}

// stamp says in each problem which document it is about.
func stamp(m *Manifest, probs []*ManifestProblem) []*ManifestProblem {
	for _, p := range probs {
		p.Source, p.Document, p.Kind, p.Name = m.Source, m.Document, m.Kind, m.Metadata.Name
		if p.Line == 0 && p.Field != "" {
			p.Line = m.Lines[p.Field]
		}
	}
	return probs
}

// kindNames are the kinds, for messages.
var kindNames = []string{ManifestVolume, ManifestSecret, ManifestService}

// headProblems checks the apiVersion, the kind and the name.
func (m *Manifest) headProblems(c *checks) {
	switch {
	case m.APIVersion == "":
		c.add("apiVersion", "is missing: start the document with apiVersion: %s", ManifestAPIVersion)
	case m.APIVersion != ManifestAPIVersion:
		c.add("apiVersion", "%q is not one Warren reads: use %s", m.APIVersion, ManifestAPIVersion)
	}
	switch {
	case m.Kind == "":
		c.add("kind", "is missing: use %s", oneOfNames(kindNames))
	case !slices.Contains(kindNames, m.Kind):
		c.add("kind", "%q is not a kind Warren applies: use %s", m.Kind, oneOfNames(kindNames))
	}
	if m.Metadata.Name == "" {
		c.add("metadata.name", "is missing: name the %s", strings.ToLower(cmp.Or(m.Kind, "record")))
	} else if err := types.ValidateName(m.Metadata.Name); err != nil {
		c.add("metadata.name", "%v", err)
	}
}
