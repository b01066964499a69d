package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warren-orchestrator/warren/orchestrator/api"
)

func newApplyCommand(opts *Options) *cobra.Command {
	var files []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE [-f FILE]...",
		Short: "Create or update volumes, secrets and services from YAML files, all in one step",
		Long: `Create or update the volumes, secrets and services the YAML documents of the
files describe (apiVersion warren.io/v1; kinds Volume, Secret, Service; several
documents per file, separated by ---). -f - reads standard input.

Every document is checked first, and nothing is applied if one is wrong. The
leader then stores every change in one step: a record that does not exist is
created, one that differs is configured (a secret gets its next version), and
one that is as the document says is unchanged, so applying the same files
again changes nothing.

  warren apply -f volume.yaml -f secret.yaml -f service.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			docs, err := readManifests(cmd.InOrStdin(), files)
			if err != nil {
				return err
			}
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			res, err := client.Apply(cmd.Context(), &api.ApplyRequest{Documents: docs, DryRun: dryRun})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if opts.Output != "table" {
				return printObject(out, opts.Output, res, nil)
			}
			for _, o := range res.Outcomes {
				fmt.Fprintln(out, outcomeLine(o, res.DryRun))
			}
			for _, o := range res.Outcomes {
				if o.Kind == api.ManifestSecret && o.Action == api.ActionConfigured && len(o.UsedBy) > 0 && !res.DryRun {
					fmt.Fprintf(out, "running tasks keep version %d of secret %s: run `warren service update SERVICE --force-recreate` for %s\n",
						o.Version-1, o.Name, strings.Join(o.UsedBy, ", "))
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&files, "filename", "f", nil, "apply the YAML documents of `FILE` (repeatable; - reads standard input)")
	fl.BoolVar(&dryRun, "dry-run", false, "show what would change, and change nothing")
	return cmd
}

// readManifests reads and checks the documents of every file, and reports
// the problems of all of them at once.
func readManifests(stdin io.Reader, files []string) ([]*api.Manifest, error) {
	if len(files) == 0 {
		return nil, errors.New("cli: apply needs -f FILE (repeatable), or -f - for standard input")
	}
	var docs []*api.Manifest
	var problems []*api.ManifestProblem
	readStdin := false
	for _, f := range files {
		name, data := f, []byte(nil)
		var err error
		if f == "-" {
			if readStdin {
				return nil, errors.New("cli: -f - is given twice: standard input can be read once")
			}
			readStdin, name = true, "stdin"
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			return nil, fmt.Errorf("cli: -f %s: %w", f, err)
		}
		m, err := api.ParseManifests(name, data)
		var bad *api.ManifestError
		switch {
		case errors.As(err, &bad):
			problems = append(problems, bad.Problems...)
		case err != nil:
			return nil, err
		}
		docs = append(docs, m...)
	}
	if len(problems) > 0 {
		return nil, &api.ManifestError{Problems: problems}
	}
	return docs, nil
}

// outcomeLine is one document's outcome: "service/postgres configured
// (spec.image)", "secret/db-password configured (version 2)".
func outcomeLine(o *api.ApplyOutcome, dryRun bool) string {
	line := strings.ToLower(o.Kind) + "/" + o.Name + " " + o.Action
	switch {
	case o.Action != api.ActionConfigured:
	case o.Kind == api.ManifestSecret:
		line += fmt.Sprintf(" (version %d)", o.Version)
	case len(o.Changed) > 0:
		line += " (" + strings.Join(o.Changed, ", ") + ")"
	}
	if dryRun {
		line += " (dry run)"
	}
	return line
}
