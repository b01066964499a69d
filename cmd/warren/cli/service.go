package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

func newServiceCommand(opts *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Create, list, inspect and remove services",
	}
	cmd.AddCommand(newServiceCreateCommand(opts), newServiceLsCommand(opts), newServiceInspectCommand(opts),
		newServicePsCommand(opts), newServiceRmCommand(opts), newServiceLogsCommand(opts), newServiceUpdateCommand(opts))
	return cmd
}

// serviceFlags are the flags of service create, as Swarm names them.
type serviceFlags struct {
	image, mode string
	replicas    int
	env, labels []string
	publish     []string
	constraints []string
	secrets     []string
	containerFlags
}

func newServiceCreateCommand(opts *Options) *cobra.Command {
	var f serviceFlags
	cmd := &cobra.Command{
		Use:   "create NAME --image IMAGE [--replicas N] [flags] [-- COMMAND [ARG...]]",
		Short: "Create a service",
		Long: `Create a service: --replicas tasks of the image (or one per node with --mode global).

What follows -- replaces the image's command (with --entrypoint, the
entrypoint's arguments), as after the image in docker service create:

  warren service create web --image busybox --publish 8080:80 -- httpd -f -p 80`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := f.service(args[0], cmd.Flags().Changed("replicas"))
			if err != nil {
				return err
			}
			if err := f.containerFlags.apply(svc, args[1:]); err != nil {
				return err
			}
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			for _, name := range f.secrets {
				s, err := client.GetSecret(cmd.Context(), name)
				if err != nil {
					return fmt.Errorf("cli: --secret %s: %w", name, err)
				}
				svc.Secrets = append(svc.Secrets, s.ID)
			}
			created, err := client.CreateService(cmd.Context(), svc)
			if err != nil {
				return err
			}
			warnLocalVolumes(cmd.Context(), cmd.ErrOrStderr(), client, svc)
			fmt.Fprintln(cmd.OutOrStdout(), created.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.image, "image", "", "container `IMAGE` to run (required)")
	fl.IntVar(&f.replicas, "replicas", 1, "number of tasks of a replicated service")
	addEnumFlag(cmd, &f.mode, "mode", "", string(types.ModeReplicated), []string{string(types.ModeReplicated), string(types.ModeGlobal)}, "replicated: --replicas tasks; global: one task per node")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "environment variable `KEY=VALUE` (repeatable)")
	fl.StringArrayVar(&f.labels, "label", nil, "service label `KEY=VALUE` (repeatable)")
	fl.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a port `HOST:CONTAINER[/udp]` on the node (repeatable)")
	fl.StringArrayVar(&f.constraints, "constraint", nil, "placement constraint such as `node.labels.disk==ssd` (repeatable)")
	fl.StringArrayVar(&f.secrets, "secret", nil, "give the tasks the secret `NAME`, at /run/secrets/NAME (repeatable)")
	f.containerFlags.add(cmd)
	return cmd
}

// service builds the record the flags describe; the manager validates it
// in full.
func (f *serviceFlags) service(name string, replicasSet bool) (*types.Service, error) {
	if f.image == "" {
		return nil, fmt.Errorf("cli: service create needs --image IMAGE")
	}
	svc := &types.Service{
		Name: name, Image: f.image, Mode: types.ServiceMode(f.mode), Replicas: f.replicas,
		DeployStrategy: types.DeployRolling, Env: f.env, Constraints: f.constraints,
	}
	if svc.Mode == types.ModeGlobal {
		if replicasSet {
			return nil, fmt.Errorf("cli: --replicas does not apply to a global service, which runs one task per node")
		}
		svc.Replicas = 0
	}
	if len(f.labels) > 0 {
		svc.Labels = map[string]string{}
		for _, l := range f.labels {
			k, v, ok := strings.Cut(l, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("cli: --label %q: use KEY=VALUE", l)
			}
			svc.Labels[k] = v
		}
	}
	for _, p := range f.publish {
		pm, err := parsePublish(p)
		if err != nil {
			return nil, err
		}
		svc.Ports = append(svc.Ports, pm)
	}
	return svc, nil
}

func parsePublish(s string) (*types.PortMapping, error) {
	spec, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = string(types.ProtocolTCP)
	}
	host, ctr, ok := strings.Cut(spec, ":")
	hp, err1 := strconv.Atoi(host)
	cp, err2 := strconv.Atoi(ctr)
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("cli: --publish %q: use HOST:CONTAINER or HOST:CONTAINER/udp, e.g. 8080:80", s)
	}
	return &types.PortMapping{HostPort: hp, ContainerPort: cp, Protocol: types.Protocol(proto)}, nil
}

func newServiceLsCommand(opts *Options) *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the services",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			svcs, err := client.ListServices(cmd.Context(), stale)
			if err != nil {
				return err
			}
			tasks, err := client.ListContainers(cmd.Context(), "", "", stale)
			if err != nil {
				return err
			}
			running := map[string]int{}
			for _, t := range tasks {
				if t.ActualState == types.ContainerRunning {
					running[t.ServiceID]++
				}
			}
			rows := make([][]string, len(svcs))
			for i, s := range svcs {
				want := strconv.Itoa(s.Replicas)
				if s.Mode == types.ModeGlobal {
					want = "global"
				}
				rows[i] = []string{s.ID, s.Name, string(s.Mode), fmt.Sprintf("%d/%s", running[s.ID], want), s.Image}
			}
			return printRows(cmd.OutOrStdout(), opts.Output, svcs, []string{"ID", "NAME", "MODE", "RUNNING", "IMAGE"}, rows)
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read from the manager asked, which may lag the leader")
	return cmd
}

// serviceNamed looks a service up by name or ID, and returns the client
// that found it for further calls.
func serviceNamed(cmd *cobra.Command, opts *Options, key string) (*api.Client, *types.Service, error) {
	client, err := newAPIClient(opts)
	if err != nil {
		return nil, nil, err
	}
	s, err := client.GetService(cmd.Context(), key)
	return client, s, err
}

func newServiceInspectCommand(opts *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect SERVICE",
		Short: "Show a service (by name or ID)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, s, err := serviceNamed(cmd, opts, args[0])
			if err != nil {
				return err
			}
			format := opts.Output
			if format == "table" {
				format = "yaml" // a service has too many fields for a table
			}
			return printObject(cmd.OutOrStdout(), format, s, nil)
		},
	}
}

func newServicePsCommand(opts *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "ps SERVICE",
		Short: "List a service's tasks and where they run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, s, err := serviceNamed(cmd, opts, args[0])
			if err != nil {
				return err
			}
			tasks, err := client.ListContainers(cmd.Context(), s.ID, "", false)
			if err != nil {
				return err
			}
			slices.SortFunc(tasks, func(a, b *types.Container) int { return strings.Compare(a.ID, b.ID) })
			rows := make([][]string, len(tasks))
			for i, t := range tasks {
				rows[i] = []string{t.ID, s.Name, t.NodeID, string(t.DesiredState), string(t.ActualState), t.Error}
			}
			return printRows(cmd.OutOrStdout(), opts.Output, tasks, []string{"ID", "SERVICE", "NODE", "DESIRED", "CURRENT", "ERROR"}, rows)
		},
	}
}

func newServiceRmCommand(opts *Options) *cobra.Command {
	return &cobra.Command{
		Use:     "rm SERVICE...",
		Aliases: []string{"delete"},
		Short:   "Remove services (by name or ID); their tasks are stopped",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			for _, a := range args {
				if err := client.DeleteService(cmd.Context(), a); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), a)
			}
			return nil
		},
	}
}
