package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

func newNodeCommand(opts *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "List, inspect, update and remove the cluster's nodes",
	}
	var stale bool
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the nodes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			nodes, err := client.ListNodes(cmd.Context(), stale)
			if err != nil {
				return err
			}
			rows := make([][]string, len(nodes))
			for i, n := range nodes {
				rows[i] = []string{n.ID, n.Hostname, string(n.Role), string(n.Status), string(n.Availability), n.Address}
			}
			return printRows(cmd.OutOrStdout(), opts.Output, nodes, []string{"ID", "HOSTNAME", "ROLE", "STATUS", "AVAILABILITY", "ADDRESS"}, rows)
		},
	}
	ls.Flags().BoolVar(&stale, "stale", false, "read from the manager asked, which may lag the leader (works without a quorum)")

	inspect := &cobra.Command{
		Use:   "inspect NODE",
		Short: "Show a node (by ID or hostname)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			n, err := client.GetNode(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			labels := make([]string, 0, len(n.Labels))
			for k, v := range n.Labels {
				labels = append(labels, k+"="+v)
			}
			slices.Sort(labels)
			return printObject(cmd.OutOrStdout(), opts.Output, n, []field{
				{"ID", n.ID}, {"Hostname", n.Hostname}, {"Role", string(n.Role)},
				{"Status", string(n.Status)}, {"Availability", string(n.Availability)},
				{"Address", n.Address}, {"Labels", strings.Join(labels, ",")},
				{"Last heartbeat", formatTime(n.LastHeartbeat)}, {"Created", formatTime(n.CreatedAt)},
			})
		},
	}

	var availability string
	var labels []string
	update := &cobra.Command{
		Use:   "update NODE --availability active|pause|drain [--label-add K=V]",
		Short: "Change a node's availability or labels",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u api.NodeUpdate
			if availability != "" {
				a := types.NodeAvailability(availability)
				u.Availability = &a
			}
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			if len(labels) > 0 {
				n, err := client.GetNode(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				u.Labels = map[string]string{}
				for k, v := range n.Labels {
					u.Labels[k] = v
				}
				for _, l := range labels {
					k, v, ok := strings.Cut(l, "=")
					if !ok || k == "" {
						return fmt.Errorf("cli: --label-add %q: use KEY=VALUE", l)
					}
					u.Labels[k] = v
				}
			}
			if u.Availability == nil && u.Labels == nil {
				return fmt.Errorf("cli: node update changes nothing: pass --availability or --label-add")
			}
			n, err := client.UpdateNode(cmd.Context(), args[0], &u)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), n.ID)
			return nil
		},
	}
	addEnumFlag(update, &availability, "availability", "", "", []string{"active", "pause", "drain"}, "active takes new tasks, pause takes none, drain also moves its tasks away")
	update.Flags().StringArrayVar(&labels, "label-add", nil, "add or change a label `KEY=VALUE` (repeatable)")

	var force bool
	rm := &cobra.Command{
		Use:   "rm NODE",
		Short: "Remove a node from the cluster (it must be down, or pass --force)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			if err := client.RemoveNode(cmd.Context(), args[0], force); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), args[0])
			return nil
		},
	}
	rm.Flags().BoolVar(&force, "force", false, "remove the node even though it is up")

	promote := &cobra.Command{
		Use:   "promote NODE...",
		Short: "Make workers managers: each starts raft and the API on its next heartbeat",
		Args:  cobra.MinimumNArgs(1),
		RunE:  roleChange(opts, (*api.Client).PromoteNode),
	}
	demote := &cobra.Command{
		Use:   "demote NODE...",
		Short: "Make managers workers: each leaves raft at once, and stops its manager half",
		Args:  cobra.MinimumNArgs(1),
		RunE:  roleChange(opts, (*api.Client).DemoteNode),
	}
	cmd.AddCommand(ls, inspect, update, rm, promote, demote)
	return cmd
}

func roleChange(opts *Options, change func(*api.Client, context.Context, string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		client, err := newAPIClient(opts)
		if err != nil {
			return err
		}
		for _, a := range args {
			if err := change(client, cmd.Context(), a); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), a)
		}
		return nil
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}
