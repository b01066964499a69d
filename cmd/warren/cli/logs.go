package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/warren-orchestrator/warren/orchestrator/api"
)

// newServiceLogsCommand is `warren service logs`: the output of every task
// of a service, relayed by a manager from the nodes, as `docker service
// logs` prints it.
func newServiceLogsCommand(opts *Options) *cobra.Command {
	var (
		follow bool
		tail   string
	)
	cmd := &cobra.Command{
		Use:   "logs SERVICE [--follow] [--tail N]",
		Short: "Print the output of a service's tasks",
		Long: `Print the output (stdout and stderr) of every task of a service (by name or
ID), read from the nodes the tasks ran on, one line at a time:

  TASK@NODE | line

--tail N starts with each task's last N lines; --follow goes on printing
what the tasks write until interrupted. A task whose node cannot be read is
reported on stderr, and the command then exits with an error once the
others are printed. -o json prints each line as a JSON object
{task, node_id, node, line} (or error) instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lo := api.LogOptions{Follow: follow, Tail: api.AllLines}
			if tail != "all" {
				n, err := strconv.Atoi(tail)
				if err != nil || n < 0 {
					return fmt.Errorf("cli: --tail %q: give a number of lines (0 or more), or all", tail)
				}
				lo.Tail = n
			}
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			defer client.Close()
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			enc := json.NewEncoder(out)
			failed := 0
			err = client.ServiceLogs(ctx, args[0], lo, func(e api.LogEntry) error {
				if e.Error != "" {
					failed++
				}
				node := e.Node
				if node == "" {
					node = e.NodeID
				}
				switch {
				case opts.Output == "json":
					return enc.Encode(e)
				case e.Error != "":
					_, err := fmt.Fprintf(errOut, "%s@%s | cannot read its output: %s\n", e.Task, node, e.Error)
					return err
				}
				_, err := fmt.Fprintf(out, "%s@%s | %s\n", e.Task, node, e.Line)
				return err
			})
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				err = nil // interrupted: how a follow ends
			}
			if err == nil && failed > 0 {
				err = fmt.Errorf("cli: the output of %d task(s) could not be read (see above)", failed)
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing what the tasks write, until interrupted")
	fl.StringVarP(&tail, "tail", "n", "all", "start with each task's last `N` lines (all: the whole output)")
	return cmd
}
