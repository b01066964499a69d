package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

func newVolumeCommand(opts *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "Create, list, inspect and delete volumes (local: the data lives on one node, and so do the tasks that mount it)",
	}
	cmd.AddCommand(newVolumeCreateCommand(opts), newVolumeLsCommand(opts), newVolumeInspectCommand(opts), newVolumeRmCommand(opts))
	return cmd
}

func newVolumeCreateCommand(opts *Options) *cobra.Command {
	var spec api.VolumeSpec
	var labels, options, moreOptions []string
	cmd := &cobra.Command{
		Use:   "create NAME [--driver local] [--label KEY=VALUE]... [--opt KEY=VALUE]... [--node NODE]",
		Short: "Create a volume; with --node its directory is made on that node at once, else where its first task runs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.Name = args[0]
			var err error
			if spec.Labels, err = keyValues("--label", labels); err != nil {
				return err
			}
			if spec.Options, err = keyValues("--opt", append(options, moreOptions...)); err != nil {
				return err
			}
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			info, err := client.CreateVolume(cmd.Context(), &spec)
			if err != nil {
				return err
			}
			if opts.Output != "table" {
				return printObject(cmd.OutOrStdout(), opts.Output, info, nil)
			}
			fmt.Fprintln(cmd.OutOrStdout(), info.Name)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&spec.Driver, "driver", api.VolumeDriverLocal, "volume `DRIVER` (only local today)")
	fl.StringArrayVar(&labels, "label", nil, "volume label `KEY=VALUE` (repeatable)")
	fl.StringArrayVar(&options, "opt", nil, "driver option `KEY=VALUE` (repeatable)")
	fl.StringArrayVar(&moreOptions, "option", nil, "the same as --opt, as the storage guide writes it")
	fl.StringVar(&spec.Node, "node", "", "pin the volume to `NODE` (ID or hostname) now, rather than where its first task runs")
	return cmd
}

// keyValues parses repeated KEY=VALUE flags; nil when none is given.
func keyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("cli: %s %q: use KEY=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

func newVolumeLsCommand(opts *Options) *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the volumes: where each lives and how much it holds",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			list, err := client.ListVolumes(cmd.Context(), stale)
			if err != nil {
				return err
			}
			rows := make([][]string, len(list))
			for i, v := range list {
				rows[i] = []string{v.Name, v.Driver, volumeSize(v, ""), volumeNode(v), ago(time.Since(v.CreatedAt))}
			}
			return printRows(cmd.OutOrStdout(), opts.Output, list, []string{"NAME", "DRIVER", "SIZE", "NODE", "CREATED"}, rows)
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read from the manager asked, which may lag the leader")
	return cmd
}

func newVolumeInspectCommand(opts *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect VOLUME",
		Short: "Show a volume: its node, its size, and the services and tasks that use it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			v, err := client.GetVolume(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if opts.Output != "table" {
				return printObject(cmd.OutOrStdout(), opts.Output, v, nil)
			}
			return printVolume(cmd.OutOrStdout(), v)
		},
	}
}

// printVolume writes a volume as the storage guide shows it, "Label:
// value" lines; Used By is a list, one line per service and per task.
func printVolume(w io.Writer, v *api.VolumeInfo) error {
	var b strings.Builder
	for _, f := range []field{
		{"Name", v.Name}, {"ID", v.ID}, {"Driver", v.Driver}, {"Mount Point", v.MountPoint},
		{"Node", volumeNode(v)}, {"Size", volumeSize(v, " ")},
	} {
		fmt.Fprintf(&b, "%s: %s\n", f.Label, f.Value)
	}
	if len(v.UsedBy)+len(v.UsedByTasks) == 0 {
		b.WriteString("Used By: -\n")
	} else {
		b.WriteString("Used By:\n")
		for _, s := range v.UsedBy {
			fmt.Fprintf(&b, "  - %s (service)\n", s)
		}
		for _, t := range v.UsedByTasks {
			fmt.Fprintf(&b, "  - %s (task)\n", t)
		}
	}
	fmt.Fprintf(&b, "Created: %s\n", v.CreatedAt.UTC().Format(time.DateTime))
	_, err := io.WriteString(w, b.String())
	return err
}

func newVolumeRmCommand(opts *Options) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "delete VOLUME...",
		Aliases: []string{"rm"},
		Short:   "Delete volumes and their data; one a service mounts is refused unless --force",
		Long: `Delete volumes. The node that holds a volume removes its directory, and
the data in it, once no container mounts it.

A volume a service mounts is refused; --force first scales the replicated
services that mount it to 0 replicas (a global service must be removed).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var done []*api.VolumeDeletion
			for _, a := range args {
				d, err := client.DeleteVolume(cmd.Context(), a, force)
				if err != nil {
					return err
				}
				done = append(done, d)
				if opts.Output != "table" {
					continue
				}
				for _, s := range d.Stopped {
					fmt.Fprintf(out, "Stopped service %s (scaled to 0 replicas): it mounted volume %s.\n", s, d.Name)
				}
				switch {
				case force && d.NodeID != "":
					fmt.Fprintf(out, "Deleted volume %s: its data is removed from node %s once no container uses it.\n", d.Name, hostOr(d.Node, d.NodeID))
				case force:
					fmt.Fprintf(out, "Deleted volume %s: it was on no node yet, so it held no data.\n", d.Name)
				default:
					fmt.Fprintln(out, d.Name)
				}
			}
			if opts.Output != "table" {
				return printObject(out, opts.Output, done, nil)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "scale the services that mount the volume to 0 replicas first, then delete it and its data")
	return cmd
}

// volumeNode is where a volume lives, by hostname; "-" until placed.
func volumeNode(v *api.VolumeInfo) string {
	if v.NodeID == "" {
		return "-"
	}
	return hostOr(v.Node, v.NodeID)
}

func hostOr(host, id string) string {
	if host != "" {
		return host
	}
	return id
}

// volumeSize is a volume's size as the storage guide prints it ("1.2GB" in
// a list, "1.2 GB" with sep " "); "-" until its node has measured it.
func volumeSize(v *api.VolumeInfo, sep string) string {
	if !v.Measured() {
		return "-"
	}
	return bytesSize(v.Size, sep)
}

// bytesSize prints n in decimal units with one decimal, dropping ".0":
// 23B, 500MB, 1.2GB.
func bytesSize(n int64, sep string) string {
	if n < 1000 {
		return fmt.Sprintf("%d%sB", n, sep)
	}
	f := float64(n)
	unit := ""
	for _, u := range []string{"KB", "MB", "GB", "TB", "PB"} {
		f /= 1000
		unit = u
		if f < 999.95 {
			break
		}
	}
	s := strings.TrimSuffix(fmt.Sprintf("%.1f", f), ".0")
	return s + sep + unit
}

// warnLocalVolumes tells, on w, that a replicated service of several
// replicas that mounts a local volume (or one that does not exist yet,
// which the first task creates, local) runs all its replicas on that
// volume's node. Only a warning: a lookup that fails says nothing.
func warnLocalVolumes(ctx context.Context, w io.Writer, client *api.Client, svc *types.Service) {
	if svc.Mode == types.ModeGlobal || svc.Replicas <= 1 {
		return
	}
	seen := map[string]bool{}
	for _, m := range svc.Volumes {
		if m == nil || seen[m.Source] {
			continue
		}
		seen[m.Source] = true
		v, err := client.GetVolume(ctx, m.Source)
		switch {
		case errors.Is(err, state.ErrNotFound):
		case err != nil:
			continue
		case v.Driver != api.VolumeDriverLocal:
			continue
		}
		fmt.Fprintf(w, "Warning: service %s has %d replicas and mounts local volume %s: all of them will run on that volume's node (not recommended: give each replica a volume of its own, or run one replica)\n",
			svc.Name, svc.Replicas, m.Source)
	}
}
