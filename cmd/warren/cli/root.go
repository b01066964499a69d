// Package cli builds the cobra command tree of the warren binary: global flags,
// their validation and the commands. It is wiring only: flags become options
// that are handed to constructors; decisions live in package orchestrator.
package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/warren-orchestrator/warren/daemon"
)

// Defaults for the global flags.
const (
	DefaultManager = daemon.DefaultAPIAddr
	DefaultDataDir = "/var/lib/warren"
	// ManagerEnv names the environment variable that overrides DefaultManager.
	ManagerEnv = "WARREN_MANAGER"
)

// Allowed values of the enumerated global flags.
var (
	OutputFormats = []string{"table", "json", "yaml"}
	LogLevels     = []string{"debug", "info", "warn", "error"}
)

// Options holds the global flags after parsing, shared by every command.
type Options struct {
	Manager  string
	DataDir  string
	Output   string
	LogLevel string
	// Logger writes to stderr at LogLevel; set before any command runs.
	Logger *slog.Logger
}

// NewRootCommand returns the warren command tree. getenv supplies the
// environment (os.Getenv in production) so tests need not touch the process's.
func NewRootCommand(getenv func(string) string) *cobra.Command {
	opts := &Options{Manager: getenv(ManagerEnv)}
	if opts.Manager == "" {
		opts.Manager = DefaultManager
	}
	root := &cobra.Command{
		Use:           "warren",
		Short:         "Warren runs containers across a cluster of nodes",
		SilenceUsage:  true,
		SilenceErrors: true, // Execute prints errors itself, once, as "Error: ...".
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			opts.Logger = newLogger(cmd.ErrOrStderr(), opts.LogLevel)
			opts.Logger.Debug("global options", "manager", opts.Manager,
				"data_dir", opts.DataDir, "output", opts.Output)
			return nil
		},
	}
	flags := root.PersistentFlags()
	flags.StringVar(&opts.Manager, "manager", opts.Manager,
		"manager API address `ADDR` as host:port (default from $"+ManagerEnv+")")
	flags.StringVar(&opts.DataDir, "data-dir", DefaultDataDir, "`DIR` holding warren.db and the node's keys")
	addEnumFlag(root, &opts.Output, "output", "o", "table", OutputFormats, "output format")
	addEnumFlag(root, &opts.LogLevel, "log-level", "", "info", LogLevels, "log level of messages on stderr")

	root.AddCommand(newVersionCommand(opts), newSimCommand(),
		newClusterCommand(opts), newStartCommand(opts),
		newJoinCommand(opts, "manager"), newJoinCommand(opts, "worker"),
		newNodeCommand(opts), newServiceCommand(opts), newImageCommand(opts), newSecretCommand(opts), newVolumeCommand(opts))
	root.AddCommand(newApplyCommand(opts))
	refuseUnknownSubcommands(root)
	return root
}

// lookupFlag finds a flag of cmd or an inherited one by its name or its
// one-letter shorthand.
func lookupFlag(cmd *cobra.Command, name string) *pflag.Flag {
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
		if f := fs.Lookup(name); f != nil {
			return f
		}
		if len(name) == 1 {
			if f := fs.ShorthandLookup(name); f != nil {
				return f
			}
		}
	}
	return nil
}

// refuseUnknownSubcommands makes every command group below the root (warren
// secret, warren volume...) fail on a subcommand it does not have, as the
// root does: cobra would print the group's help and exit 0, so that a
// script running `warren secret export` would think it worked.
func refuseUnknownSubcommands(root *cobra.Command) {
	for _, c := range root.Commands() {
		refuseUnknownSubcommands(c)
		if !c.HasSubCommands() || c.Runnable() {
			continue
		}
		c.Args = cobra.ArbitraryArgs
		// `warren secret export --all --output F`: the command is what
		// is wrong, not the flags, which belong to it.
		c.DisableFlagParsing = true
		c.RunE = func(cmd *cobra.Command, args []string) error {
			// The global flags come along unparsed (--data-dir DIR): the
			// first word that is neither a flag nor a flag's value is the
			// unknown command.
			unknownFlag := ""
			for i := 0; i < len(args); i++ {
				a := args[i]
				if !strings.HasPrefix(a, "-") {
					return fmt.Errorf("unknown command %q for %q: run `%s --help` for its commands", a, cmd.CommandPath(), cmd.CommandPath())
				}
				name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
				f := lookupFlag(cmd, name)
				switch {
				case a == "-h" || a == "--help":
				case f == nil:
					if unknownFlag == "" {
						unknownFlag = a
					}
				case !hasValue && f.NoOptDefVal == "":
					i++ // its value
				}
			}
			if unknownFlag != "" {
				return fmt.Errorf("unknown flag: %s: %q takes a command first: run `%s --help`", unknownFlag, cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		}
	}
}

// Execute runs the command tree with args and returns the process exit code:
// 0 on success, 1 after printing "Error: ..." to stderr.
func Execute(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return ExecuteWithInput(args, os.Stdin, stdout, stderr, getenv)
}

// ExecuteWithInput is Execute with the commands' standard input (secret
// create --from-stdin) given.
func ExecuteWithInput(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	root := NewRootCommand(getenv)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		var exit *ExitError
		if errors.As(err, &exit) {
			return exit.Code
		}
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	// level was validated by its flag, so this cannot fail.
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
