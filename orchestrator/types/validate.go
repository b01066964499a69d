package types

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/reference"
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("types: invalid record")

// MaxSecretSize is the largest secret a user may store, in bytes of
// plaintext, as in Swarm.
const MaxSecretSize = 1 << 20

// MaxSealOverhead is the most that encryption may add to a secret's
// plaintext (nonce, tag and envelope header).
const MaxSealOverhead = 1 << 10

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	idRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// FieldError is one problem with one field of a record.
type FieldError struct {
	Field   string // e.g. "Ports[0].HostPort"
	Problem string // what is wrong and, where it helps, what to do
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// InvalidError lists every problem found in one record.
type InvalidError struct {
	Kind   Kind
	ID     string
	Name   string
	Fields []*FieldError
}

func (e *InvalidError) Error() string {
	who := e.Name
	if who == "" {
		who = e.ID
	}
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return fmt.Sprintf("types: invalid %s %q: %s", e.Kind, who, strings.Join(msgs, "; "))
}

// Unwrap lets errors.Is(err, ErrInvalid) match.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// ValidateName checks a user-facing name against the rules for a DNS label
// (RFC 1123): services are found by name in DNS, so the same rule holds for
// every named record. Lower case only, so names that DNS would treat as equal
// cannot both exist.
func ValidateName(name string) error {
	if nameRE.MatchString(name) {
		return nil
	}
	return fmt.Errorf("%q is not a valid name: use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit", name)
}

// ValidateImage checks an image reference such as "nginx:1.27",
// "registry.example.com:5000/team/app@sha256:...".
func ValidateImage(image string) error {
	if image == "" {
		return errors.New(`is empty: give an image reference such as "nginx:1.27"`)
	}
	if _, err := reference.ParseNormalizedNamed(image); err != nil {
		return fmt.Errorf("%q is not a valid image reference (%v): use [registry/]repository[:tag][@digest], lowercase", image, err)
	}
	return nil
}

// ValidateSecretData checks a secret's plaintext before it is encrypted.
func ValidateSecretData(data []byte) error {
	switch {
	case len(data) == 0:
		return fmt.Errorf("%w: secret data is empty: give the secret a value", ErrInvalid)
	case len(data) > MaxSecretSize:
		return fmt.Errorf("%w: secret data is %d bytes, more than the limit of %d (1 MiB): store large files in a volume instead", ErrInvalid, len(data), MaxSecretSize)
	}
	return nil
}

// checker collects field problems for one record.
type checker struct{ fields []*FieldError }

func (c *checker) add(field, format string, args ...any) {
	c.fields = append(c.fields, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

func (c *checker) err(field string, err error) {
	if err != nil {
		c.add(field, "%s", err.Error())
	}
}

func (c *checker) result(r Record) error {
	if len(c.fields) == 0 {
		return nil
	}
	return &InvalidError{Kind: r.Kind(), ID: r.RecordID(), Name: r.RecordName(), Fields: c.fields}
}

func (c *checker) id(field, id string) {
	if !idRE.MatchString(id) {
		c.add(field, "%q is not a valid ID: use 1-128 letters, digits, '_', '.' and '-', starting with a letter or digit", id)
	}
}

func (c *checker) optionalID(field, id string) {
	if id != "" {
		c.id(field, id)
	}
}

func (c *checker) name(field, name string) { c.err(field, ValidateName(name)) }

func oneOf[T ~string](c *checker, field string, v T, allowed ...T) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	c.add(field, "%q is not allowed: use one of %s", v, strings.Join(names, ", "))
}

func (c *checker) nonNegative(field string, v int64) {
	if v < 0 {
		c.add(field, "is %d: must be 0 or more", v)
	}
}

func (c *checker) port(field string, p int, allowZero bool) {
	if (p == 0 && allowZero) || (p >= 1 && p <= 65535) {
		return
	}
	c.add(field, "is %d: ports are 1-65535", p)
}

func (c *checker) absPath(field, p string) {
	switch {
	case !path.IsAbs(p):
		c.add(field, "%q is not an absolute path: start it with /", p)
	case path.Clean(p) != p:
		c.add(field, "%q is not a clean path: use %q", p, path.Clean(p))
	}
}

// process checks what a service or task says about its container's
// process.
func (c *checker) process(command, args []string, workingDir, user string) {
	for i, a := range command {
		if strings.ContainsRune(a, 0) {
			c.add(fmt.Sprintf("Command[%d]", i), "contains a NUL byte")
		}
	}
	if len(command) > 0 && command[0] == "" {
		c.add("Command[0]", "is empty: name the program to run")
	}
	for i, a := range args {
		if strings.ContainsRune(a, 0) {
			c.add(fmt.Sprintf("Args[%d]", i), "contains a NUL byte")
		}
	}
	if workingDir != "" {
		c.absPath("WorkingDir", workingDir)
	}
	if user != "" {
		name, group, _ := strings.Cut(user, ":")
		if !userPart.MatchString(name) || (strings.Contains(user, ":") && !userPart.MatchString(group)) {
			c.add("User", "is %q: use NAME, UID, NAME:GROUP or UID:GID", user)
		}
	}
}

// userPart is a user or group, by name or numeric ID.
var userPart = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$`)

func (c *checker) labels(field string, m map[string]string) {
	for k := range m {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			c.add(field, "key %q is not allowed: label keys are non-empty and contain no '='", k)
		}
	}
}

func (c *checker) env(field string, env []string) {
	for i, e := range env {
		// Not a regexp: services carry many variables, and this runs on
		// every write.
		if strings.IndexByte(e, '=') < 1 || strings.IndexByte(e, 0) >= 0 {
			c.add(fmt.Sprintf("%s[%d]", field, i), "%q is not KEY=VALUE", e)
		}
	}
}

func (c *checker) ports(field string, ports []*PortMapping) {
	published := map[string]int{}
	for i, p := range ports {
		f := fmt.Sprintf("%s[%d]", field, i)
		if p == nil {
			c.add(f, "is null")
			continue
		}
		c.port(f+".ContainerPort", p.ContainerPort, false)
		c.port(f+".HostPort", p.HostPort, true)
		oneOf(c, f+".Protocol", p.Protocol, ProtocolTCP, ProtocolUDP)
		if p.PublishMode != "" {
			oneOf(c, f+".PublishMode", p.PublishMode, PublishIngress, PublishHost)
		}
		if p.HostPort != 0 {
			key := fmt.Sprintf("%d/%s", p.HostPort, p.Protocol)
			if j, dup := published[key]; dup {
				c.add(f+".HostPort", "%s is already published by %s[%d]: publish each host port once", key, field, j)
			}
			published[key] = i
		}
	}
}

func (c *checker) mounts(field string, mounts []*VolumeMount) {
	targets := map[string]int{}
	for i, m := range mounts {
		f := fmt.Sprintf("%s[%d]", field, i)
		if m == nil {
			c.add(f, "is null")
			continue
		}
		c.name(f+".Source", m.Source)
		c.absPath(f+".Target", m.Target)
		if j, dup := targets[m.Target]; dup {
			c.add(f+".Target", "%q is already mounted by %s[%d]: mount one volume per path", m.Target, field, j)
		}
		targets[m.Target] = i
	}
}

func (c *checker) healthCheck(field string, h *HealthCheck) {
	if h == nil {
		return
	}
	oneOf(c, field+".Type", h.Type, HealthCheckHTTP, HealthCheckTCP, HealthCheckExec)
	switch h.Type {
	case HealthCheckHTTP:
		c.port(field+".Port", h.Port, false)
		if !strings.HasPrefix(h.Path, "/") {
			c.add(field+".Path", "%q must start with /", h.Path)
		}
	case HealthCheckTCP:
		c.port(field+".Port", h.Port, false)
	case HealthCheckExec:
		if len(h.Command) == 0 {
			c.add(field+".Command", "is empty: an exec check needs a command to run")
		}
	}
	c.nonNegative(field+".Interval", int64(h.Interval))
	c.nonNegative(field+".Timeout", int64(h.Timeout))
	c.nonNegative(field+".Retries", int64(h.Retries))
	c.nonNegative(field+".StartPeriod", int64(h.StartPeriod))
}

func (c *checker) restartPolicy(field string, p *RestartPolicy) {
	if p == nil {
		return
	}
	oneOf(c, field+".Condition", p.Condition, RestartNone, RestartOnFailure, RestartAlways)
	c.nonNegative(field+".MaxAttempts", int64(p.MaxAttempts))
	c.nonNegative(field+".Delay", int64(p.Delay))
}

func (c *checker) resources(field string, r *ResourceRequirements) {
	if r == nil {
		return
	}
	if r.CPULimit < 0 || r.CPUReservation < 0 {
		c.add(field, "CPU limit and reservation must be 0 or more")
	}
	c.nonNegative(field+".MemoryLimit", r.MemoryLimit)
	c.nonNegative(field+".MemoryReservation", r.MemoryReservation)
	if r.CPULimit > 0 && r.CPUReservation > r.CPULimit {
		c.add(field+".CPUReservation", "%g is more than the limit %g", r.CPUReservation, r.CPULimit)
	}
	if r.MemoryLimit > 0 && r.MemoryReservation > r.MemoryLimit {
		c.add(field+".MemoryReservation", "%d is more than the limit %d", r.MemoryReservation, r.MemoryLimit)
	}
}

// Validate reports every problem with the node.
func (n *Node) Validate() error {
	var c checker
	c.id("ID", n.ID)
	oneOf(&c, "Role", n.Role, RoleManager, RoleWorker)
	oneOf(&c, "Status", n.Status, NodeReady, NodeDown, NodeDraining, NodeUnknown)
	oneOf(&c, "Availability", n.Availability, NodeActive, NodePause, NodeDrain)
	c.labels("Labels", n.Labels)
	if r := n.Resources; r != nil {
		c.nonNegative("Resources.CPUCores", int64(r.CPUCores))
		c.nonNegative("Resources.MemoryBytes", r.MemoryBytes)
		c.nonNegative("Resources.DiskBytes", r.DiskBytes)
		if r.CPUAllocated < 0 {
			c.add("Resources.CPUAllocated", "is %g: must be 0 or more", r.CPUAllocated)
		}
		c.nonNegative("Resources.MemoryAllocated", r.MemoryAllocated)
		c.nonNegative("Resources.DiskAllocated", r.DiskAllocated)
	}
	return c.result(n)
}

// Validate reports every problem with the service.
func (s *Service) Validate() error {
	var c checker
	c.id("ID", s.ID)
	c.name("Name", s.Name)
	c.err("Image", ValidateImage(s.Image))
	c.process(s.Command, s.Args, s.WorkingDir, s.User)
	c.nonNegative("Replicas", int64(s.Replicas))
	oneOf(&c, "Mode", s.Mode, ModeReplicated, ModeGlobal)
	if s.Mode == ModeGlobal && s.Replicas != 0 {
		c.add("Replicas", "is %d: a global service runs one task per node; leave replicas at 0", s.Replicas)
	}
	oneOf(&c, "DeployStrategy", s.DeployStrategy, DeployRolling, DeployBlueGreen, DeployCanary)
	if u := s.UpdateConfig; u != nil {
		c.nonNegative("UpdateConfig.Parallelism", int64(u.Parallelism))
		c.nonNegative("UpdateConfig.Delay", int64(u.Delay))
		if u.FailureAction != "" {
			oneOf(&c, "UpdateConfig.FailureAction", u.FailureAction, FailurePause, FailureContinue, FailureRollback)
		}
		if u.CanaryWeight < 0 || u.CanaryWeight > 100 {
			c.add("UpdateConfig.CanaryWeight", "is %d: a weight is a percentage, 0-100", u.CanaryWeight)
		}
	}
	c.env("Env", s.Env)
	c.ports("Ports", s.Ports)
	for i, id := range s.Networks {
		c.id(fmt.Sprintf("Networks[%d]", i), id)
	}
	for i, id := range s.Secrets {
		c.id(fmt.Sprintf("Secrets[%d]", i), id)
	}
	c.mounts("Volumes", s.Volumes)
	c.labels("Labels", s.Labels)
	c.healthCheck("HealthCheck", s.HealthCheck)
	c.restartPolicy("RestartPolicy", s.RestartPolicy)
	c.resources("Resources", s.Resources)
	c.nonNegative("StopTimeout", int64(s.StopTimeout))
	for i, con := range s.Constraints {
		if _, err := ParseConstraint(con); err != nil {
			c.add(fmt.Sprintf("Constraints[%d]", i), "%v", err)
		}
	}
	return c.result(s)
}

var containerStates = []ContainerState{ContainerPending, ContainerRunning, ContainerFailed, ContainerComplete, ContainerShutdown}

// Validate reports every problem with the container.
func (ct *Container) Validate() error {
	var c checker
	c.id("ID", ct.ID)
	c.id("ServiceID", ct.ServiceID)
	c.optionalID("NodeID", ct.NodeID)
	oneOf(&c, "DesiredState", ct.DesiredState, containerStates...)
	oneOf(&c, "ActualState", ct.ActualState, containerStates...)
	if ct.HealthStatus != "" {
		oneOf(&c, "HealthStatus", ct.HealthStatus, HealthHealthy, HealthUnhealthy, HealthUnknown)
	}
	c.err("Image", ValidateImage(ct.Image))
	c.process(ct.Command, ct.Args, ct.WorkingDir, ct.User)
	c.env("Env", ct.Env)
	c.ports("Ports", ct.Ports)
	c.mounts("Mounts", ct.Mounts)
	for i, id := range ct.Secrets {
		c.id(fmt.Sprintf("Secrets[%d]", i), id)
	}
	c.healthCheck("HealthCheck", ct.HealthCheck)
	c.restartPolicy("RestartPolicy", ct.RestartPolicy)
	c.resources("Resources", ct.Resources)
	c.nonNegative("StopTimeout", int64(ct.StopTimeout))
	c.nonNegative("Slot", int64(ct.Slot))
	c.nonNegative("Attempt", int64(ct.Attempt))
	return c.result(ct)
}

// Validate reports every problem with the secret. Data is ciphertext here;
// use ValidateSecretData on the plaintext before encrypting it.
func (s *Secret) Validate() error {
	var c checker
	c.id("ID", s.ID)
	c.name("Name", s.Name)
	switch {
	case len(s.Data) == 0:
		c.add("Data", "is empty: a secret needs a value")
	case len(s.Data) > MaxSecretSize+MaxSealOverhead:
		c.add("Data", "is %d bytes: secrets are at most 1 MiB", len(s.Data))
	}
	return c.result(s)
}

// Validate reports every problem with the volume.
func (v *Volume) Validate() error {
	var c checker
	c.id("ID", v.ID)
	c.name("Name", v.Name)
	c.name("Driver", v.Driver)
	c.optionalID("NodeID", v.NodeID)
	if v.MountPath != "" {
		c.absPath("MountPath", v.MountPath)
	}
	c.labels("Options", v.Options)
	return c.result(v)
}

// Validate reports every problem with the network.
func (n *Network) Validate() error {
	var c checker
	c.id("ID", n.ID)
	c.name("Name", n.Name)
	c.name("Driver", n.Driver)
	var subnet netip.Prefix
	if n.Subnet != "" {
		p, err := netip.ParsePrefix(n.Subnet)
		if err != nil {
			c.add("Subnet", "%q is not a CIDR such as 10.0.1.0/24", n.Subnet)
		}
		subnet = p
	}
	if n.Gateway != "" {
		gw, err := netip.ParseAddr(n.Gateway)
		switch {
		case err != nil:
			c.add("Gateway", "%q is not an IP address", n.Gateway)
		case subnet.IsValid() && !subnet.Contains(gw):
			c.add("Gateway", "%s is outside the subnet %s", gw, subnet)
		}
	}
	return c.result(n)
}

// Validate reports every problem with the cluster record. CACert is checked
// as PEM and against CADigest, but not parsed as X.509: every manager
// validates the record when it applies it, and a parser that grows stricter
// in a later Go release would make managers of different builds disagree.
func (cl *Cluster) Validate() error {
	var c checker
	c.id("ID", cl.ID)
	block, rest := pem.Decode(cl.CACert)
	switch {
	case len(cl.CACert) == 0:
		c.add("CACert", "is empty: store the cluster CA's certificate, PEM-encoded")
	case block == nil:
		c.add("CACert", "is not PEM: store the cluster CA's certificate, PEM-encoded (-----BEGIN CERTIFICATE-----)")
	case block.Type != "CERTIFICATE":
		c.add("CACert", "holds a PEM %q block: store only the CA's certificate (a CERTIFICATE block), never its key", block.Type)
	case len(bytes.TrimSpace(rest)) > 0:
		c.add("CACert", "holds more than one PEM block: store the CA's certificate alone")
	}
	switch {
	case !digestRE.MatchString(cl.CADigest):
		c.add("CADigest", "%q is not a digest: use \"sha256:\" and 64 lowercase hex digits", cl.CADigest)
	case block != nil && block.Type == "CERTIFICATE":
		if want := certDigest(block.Bytes); cl.CADigest != want {
			c.add("CADigest", "%s is not the digest of CACert (%s): store the digest of the certificate in CACert", cl.CADigest, want)
		}
	}
	switch {
	case cl.WorkerToken == "":
		c.add("WorkerToken", "is empty: give the cluster a worker join token")
	case cl.WorkerToken == cl.ManagerToken:
		c.add("ManagerToken", "is the same as WorkerToken: use a different token for each role, or any worker could join as a manager")
	}
	if cl.ManagerToken == "" {
		c.add("ManagerToken", "is empty: give the cluster a manager join token")
	}
	if len(cl.EncryptionSalt) != EncryptionSaltSize {
		c.add("EncryptionSalt", "is %d bytes: use exactly %d random bytes", len(cl.EncryptionSalt), EncryptionSaltSize)
	}
	return c.result(cl)
}

// certDigest is "sha256:<hex>" of a certificate's DER encoding, as join
// tokens pin the CA.
func certDigest(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseSize reads a byte count: a whole number of bytes with an optional
// binary unit, K, M, G or T (KB, KiB... read alike: 64M is 64 MiB).
func ParseSize(s string) (int64, error) {
	text := strings.TrimSpace(s)
	digits := strings.IndexFunc(text, func(r rune) bool { return r < '0' || r > '9' })
	if digits < 0 {
		digits = len(text)
	}
	unit := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(text[digits:]), "B"), "I")
	shift, ok := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[unit]
	n, err := strconv.ParseInt(text[:digits], 10, 64)
	if err != nil || !ok || n > (1<<62)>>shift {
		return 0, fmt.Errorf("%w: %q is not a size: use bytes, or a number and a unit, e.g. 64M or 1G", ErrInvalid, s)
	}
	return n << shift, nil
}
