package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// field is one labelled value of a table rendering.
type field struct {
	Label string
	Value string
}

// printObject writes v as JSON or YAML (both from v's json tags, so the two
// agree on field names) or, for "table", as aligned "Label: value" lines.
func printObject(w io.Writer, format string, v any, table []field) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("cli: encode yaml: %w", err)
		}
		_, err = w.Write(b)
		return err
	default:
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, f := range table {
			fmt.Fprintf(tw, "%s:\t%s\n", f.Label, f.Value)
		}
		return tw.Flush()
	}
}
