package cli

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// serviceUpdateFlags are service update's flags, as Swarm names them.
type serviceUpdateFlags struct {
	image                  string
	replicas               int
	envAdd, envRm          []string
	secretAdd, secretRm    []string
	forceRecreate, forceSw bool
	parallelism            int
	delay                  time.Duration
}

func newServiceUpdateCommand(opts *Options) *cobra.Command {
	var f serviceUpdateFlags
	cmd := &cobra.Command{
		Use:   "update SERVICE [--image IMAGE] [--replicas N] [--env-add K=V] [--secret-add NAME] [--force-recreate]",
		Short: "Change a service; its tasks are replaced as a rolling update",
		Long: `Change a service (by name or ID). Tasks whose spec changed are replaced in
their slots, --update-parallelism at a time, as a rolling update.

--force-recreate replaces every task even if nothing changed: this is how
tasks pick up a secret's new version (warren secret update).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, svc, err := serviceNamed(cmd, opts, args[0])
			if err != nil {
				return err
			}
			changed := false
			if f.image != "" && f.image != svc.Image {
				svc.Image, changed = f.image, true
			}
			if cmd.Flags().Changed("replicas") {
				if svc.Mode == types.ModeGlobal {
					return fmt.Errorf("cli: --replicas does not apply to global service %s, which runs one task per node", svc.Name)
				}
				if f.replicas != svc.Replicas {
					svc.Replicas, changed = f.replicas, true
				}
			}
			for _, kv := range f.envAdd {
				k, _, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("cli: --env-add %q: use KEY=VALUE", kv)
				}
				svc.Env = slices.DeleteFunc(svc.Env, func(e string) bool { return strings.HasPrefix(e, k+"=") })
				svc.Env, changed = append(svc.Env, kv), true
			}
			for _, k := range f.envRm {
				n := len(svc.Env)
				svc.Env = slices.DeleteFunc(svc.Env, func(e string) bool { return e == k || strings.HasPrefix(e, k+"=") })
				changed = changed || len(svc.Env) != n
			}
			for _, name := range f.secretAdd {
				s, err := client.GetSecret(cmd.Context(), name)
				if err != nil {
					return fmt.Errorf("cli: --secret-add %s: %w", name, err)
				}
				if !slices.Contains(svc.Secrets, s.ID) {
					svc.Secrets, changed = append(svc.Secrets, s.ID), true
				}
			}
			for _, name := range f.secretRm {
				s, err := client.GetSecret(cmd.Context(), name)
				if err != nil {
					return fmt.Errorf("cli: --secret-rm %s: %w", name, err)
				}
				n := len(svc.Secrets)
				svc.Secrets = slices.DeleteFunc(svc.Secrets, func(id string) bool { return id == s.ID })
				changed = changed || len(svc.Secrets) != n
			}
			if fl := cmd.Flags(); fl.Changed("update-parallelism") || fl.Changed("update-delay") {
				u := types.UpdateConfig{Parallelism: 1}
				if svc.UpdateConfig != nil {
					u = *svc.UpdateConfig
				}
				if fl.Changed("update-parallelism") {
					u.Parallelism = f.parallelism
				}
				if fl.Changed("update-delay") {
					u.Delay = f.delay
				}
				svc.UpdateConfig, changed = &u, true
			}
			if f.forceRecreate || f.forceSw {
				svc.ForceUpdate++
				changed = true
			}
			if !changed {
				return fmt.Errorf("cli: service update %s: nothing to change: give a flag such as --image, --replicas or --force-recreate", svc.Name)
			}
			updated, err := client.UpdateService(cmd.Context(), svc)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), updated.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.image, "image", "", "run `IMAGE` instead")
	fl.IntVar(&f.replicas, "replicas", 0, "number of tasks of a replicated service")
	fl.StringArrayVar(&f.envAdd, "env-add", nil, "add or change the environment variable `KEY=VALUE` (repeatable)")
	fl.StringArrayVar(&f.envRm, "env-rm", nil, "remove the environment variable `KEY` (repeatable)")
	fl.StringArrayVar(&f.secretAdd, "secret-add", nil, "give the tasks the secret `NAME` too (repeatable)")
	fl.StringArrayVar(&f.secretRm, "secret-rm", nil, "take the secret `NAME` from the tasks (repeatable)")
	fl.IntVar(&f.parallelism, "update-parallelism", 1, "tasks replaced at a time in a rolling update (0: all at once)")
	fl.DurationVar(&f.delay, "update-delay", 0, "wait after a replaced task has started before replacing more")
	fl.BoolVar(&f.forceRecreate, "force-recreate", false, "replace every task, even if nothing changed (picks up new secret versions)")
	fl.BoolVar(&f.forceSw, "force", false, "the same as --force-recreate, as Swarm names it")
	return cmd
}
