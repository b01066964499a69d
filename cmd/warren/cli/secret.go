package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

func newSecretCommand(opts *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Create, list, inspect and delete secrets (values are encrypted, and never shown)",
	}
	cmd.AddCommand(newSecretCreateCommand(opts), newSecretUpdateCommand(opts), newSecretLsCommand(opts), newSecretInspectCommand(opts), newSecretRmCommand(opts), newSecretRotateKeyCommand(opts))
	return cmd
}

func newSecretCreateCommand(opts *Options) *cobra.Command {
	return newSecretValueCommand(opts, "create NAME", "Create a secret; tasks of services that use it find it at /run/secrets/NAME",
		func(cmd *cobra.Command, client *api.Client, name string, data []byte) error {
			info, err := client.CreateSecret(cmd.Context(), name, data)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), info.ID)
			return nil
		})
}

func newSecretUpdateCommand(opts *Options) *cobra.Command {
	return newSecretValueCommand(opts, "update SECRET", "Make a secret's next version; tasks get it when replaced (service update --force-recreate)",
		func(cmd *cobra.Command, client *api.Client, name string, data []byte) error {
			info, err := client.UpdateSecret(cmd.Context(), name, data)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: version %d\n", info.Name, info.Version)
			if len(info.UsedBy) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "running tasks keep their version: run `warren service update SERVICE --force-recreate` for %s\n",
					strings.Join(info.UsedBy, ", "))
			}
			return nil
		})
}

// newSecretValueCommand is a command that sends one secret's value, given
// by exactly one of --from-literal, --from-file and --from-stdin; send
// gets it, and the value is wiped after.
func newSecretValueCommand(opts *Options, use, short string, send func(*cobra.Command, *api.Client, string, []byte) error) *cobra.Command {
	var literal, file string
	var stdin bool
	cmd := &cobra.Command{
		Use:   use + " (--from-literal KEY=VALUE | --from-file PATH | --from-stdin)",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := secretValue(cmd.InOrStdin(), literal, file, stdin)
			if err != nil {
				return err
			}
			defer clear(data)
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			return send(cmd, client, args[0], data)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&literal, "from-literal", "", "the value, as `KEY=VALUE` (the secret holds VALUE)")
	fl.StringVar(&file, "from-file", "", "read the value from `PATH`")
	fl.BoolVar(&stdin, "from-stdin", false, "read the value from standard input")
	return cmd
}

// secretValue is the value the flags give, exactly one of them.
func secretValue(in io.Reader, literal, file string, stdin bool) ([]byte, error) {
	given := 0
	for _, set := range []bool{literal != "", file != "", stdin} {
		if set {
			given++
		}
	}
	if given != 1 {
		return nil, fmt.Errorf("cli: give exactly one of --from-literal KEY=VALUE, --from-file PATH and --from-stdin")
	}
	var data []byte
	switch {
	case literal != "":
		_, v, ok := strings.Cut(literal, "=")
		if !ok {
			// Not quoted back: it may be the value itself.
			return nil, fmt.Errorf("cli: --from-literal has no '=': use KEY=VALUE, e.g. password=s3cret (the secret holds VALUE)")
		}
		data = []byte(v)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("cli: --from-file: %w", err)
		}
		data = b
	default:
		b, err := io.ReadAll(io.LimitReader(in, types.MaxSecretSize+1))
		if err != nil {
			return nil, fmt.Errorf("cli: --from-stdin: %w", err)
		}
		data = b
	}
	if err := types.ValidateSecretData(data); err != nil {
		return nil, fmt.Errorf("cli: %w", err)
	}
	return data, nil
}

func newSecretLsCommand(opts *Options) *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the secrets (never their values)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			list, err := client.ListSecrets(cmd.Context(), stale)
			if err != nil {
				return err
			}
			rows := make([][]string, len(list))
			for i, s := range list {
				rows[i] = []string{s.Name, humanSize(s.Size), ago(time.Since(s.CreatedAt))}
			}
			return printRows(cmd.OutOrStdout(), opts.Output, list, []string{"NAME", "SIZE", "CREATED"}, rows)
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read from the manager asked, which may lag the leader")
	return cmd
}

func newSecretInspectCommand(opts *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect SECRET",
		Short: "Show a secret's metadata and the services that use it (never its value)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			s, err := client.GetSecret(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			used := "-"
			if len(s.UsedBy) > 0 {
				used = strings.Join(s.UsedBy, ", ")
			}
			return printObject(cmd.OutOrStdout(), opts.Output, s, []field{
				{"Name", s.Name}, {"ID", s.ID}, {"Size", fmt.Sprintf("%d bytes", s.Size)},
				{"Version", versions(s.Version, s.Versions)},
				{"Created", s.CreatedAt.UTC().Format(time.DateTime)}, {"Updated", s.UpdatedAt.UTC().Format(time.DateTime)},
				{"Used By", used},
			})
		},
	}
}

func newSecretRmCommand(opts *Options) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm SECRET...",
		Aliases: []string{"delete"},
		Short:   "Delete secrets; one a service uses is refused unless --force",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			for _, a := range args {
				var users []string
				if force {
					info, err := client.GetSecret(cmd.Context(), a)
					if err != nil {
						return err
					}
					users = info.UsedBy
				}
				if err := client.DeleteSecret(cmd.Context(), a, force); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), a)
				if len(users) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "removed from service %s (running tasks keep it until they are replaced)\n", strings.Join(users, ", "))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove the secret from the services that use it first (their running tasks keep it until replaced)")
	return cmd
}

// versions prints a secret's version, with the older ones still kept.
func versions(current int, kept []int) string {
	if len(kept) <= 1 {
		return fmt.Sprint(current)
	}
	var old []string
	for _, v := range kept {
		if v != current {
			old = append(old, fmt.Sprint(v))
		}
	}
	return fmt.Sprintf("%d (older kept for running tasks: %s)", current, strings.Join(old, ", "))
}

// humanSize prints a byte count as the storage guide does: 23B, 1.2KB.
func humanSize(n int) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%dB", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.1fKB", float64(n)/1000)
	}
	return fmt.Sprintf("%.1fMB", float64(n)/1000/1000)
}

// ago prints an age as the storage guide does: 2d ago, 1h ago.
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
