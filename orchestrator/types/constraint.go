package types

import (
	"fmt"
	"strings"
)

// Constraint is one parsed placement constraint of a service.
type Constraint struct {
	// Attribute is "node.id", "node.hostname", "node.role" or
	// "node.labels.KEY".
	Attribute string
	Equal     bool // == when true, != when false
	Value     string
}

// ParseConstraint parses "ATTRIBUTE==VALUE" or "ATTRIBUTE!=VALUE".
func ParseConstraint(s string) (Constraint, error) {
	var c Constraint
	attr, value, found := strings.Cut(s, "==")
	c.Equal = found
	if !found {
		attr, value, found = strings.Cut(s, "!=")
	}
	attr, value = strings.TrimSpace(attr), strings.TrimSpace(value)
	if !found || value == "" {
		return c, fmt.Errorf("%q is not a constraint: write ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE, e.g. node.labels.zone==a", s)
	}
	switch {
	case attr == "node.id", attr == "node.hostname", attr == "node.role":
	case strings.HasPrefix(attr, "node.labels.") && len(attr) > len("node.labels."):
	default:
		return c, fmt.Errorf("%q: unknown attribute %q: use node.id, node.hostname, node.role or node.labels.KEY", s, attr)
	}
	c.Attribute, c.Value = attr, value
	return c, nil
}

// Matches reports whether node n satisfies the constraint. A label the node
// does not have matches != and never ==.
func (c Constraint) Matches(n *Node) bool {
	var got string
	var has bool
	switch c.Attribute {
	case "node.id":
		got, has = n.ID, true
	case "node.hostname":
		got, has = n.Hostname, true
	case "node.role":
		got, has = string(n.Role), true
	default:
		got, has = n.Labels[strings.TrimPrefix(c.Attribute, "node.labels.")]
	}
	return (has && got == c.Value) == c.Equal
}

func (c Constraint) String() string {
	op := "!="
	if c.Equal {
		op = "=="
	}
	return c.Attribute + op + c.Value
}
