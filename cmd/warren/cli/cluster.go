package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	wctd "github.com/warren-orchestrator/warren/backends/containerd"
	"github.com/warren-orchestrator/warren/backends/containerd/cninet"
	"github.com/warren-orchestrator/warren/daemon"
	"github.com/warren-orchestrator/warren/orchestrator/api"
)

func newClusterCommand(opts *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Create a cluster and look after it: init, info, join tokens",
	}
	cmd.AddCommand(newClusterInitCommand(opts), newClusterInfoCommand(opts), newJoinTokenCommand(opts),
		newBackupCommand(opts), newRestoreCommand(opts), newUnlockCommand(opts))
	return cmd
}

// nodeFlags are the flags of the commands that run a node.
type nodeFlags struct {
	apiAddr, raftAddr string
	noWorker          bool
	runtimeFlags
}

// runtimeFlags say how a worker runs its tasks.
type runtimeFlags struct {
	runtime, containerd string
	bridge, subnet      string
}

func (f *runtimeFlags) add(cmd *cobra.Command, recorded bool) {
	usage := "how this node runs tasks: containerd (real containers) or simulated (in memory, nothing runs)"
	def := daemon.RuntimeContainerd
	if recorded {
		usage += "; default: what init or join set"
		def = ""
	}
	addEnumFlag(cmd, &f.runtime, "runtime", "", def, daemon.Runtimes, usage)
	cmd.Flags().StringVar(&f.containerd, "containerd", "", "containerd's `socket` (default "+wctd.DefaultAddress+")")
	cmd.Flags().StringVar(&f.bridge, "bridge", "", "the containers' bridge `NAME` on this machine (default "+cninet.DefaultBridge+")")
	cmd.Flags().StringVar(&f.subnet, "subnet", "", "the containers' IPv4 `CIDR` on this machine (default "+cninet.DefaultSubnet+")")
}

func (f *nodeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.apiAddr, "api-addr", daemon.DefaultAPIAddr, "`host:port` the API serves on (the CLI's --manager)")
	cmd.Flags().StringVar(&f.raftAddr, "advertise-addr", daemon.DefaultRaftAddr, "`host:port` other managers reach this one's raft at")
	cmd.Flags().BoolVar(&f.noWorker, "no-worker", false, "run no tasks on this manager")
	f.runtimeFlags.add(cmd, false)
}

func (o *Options) nodeConfig(cmd *cobra.Command, f *nodeFlags) daemon.Config {
	return daemon.Config{
		DataDir: o.DataDir, APIAddr: f.apiAddr, RaftAddr: f.raftAddr, NoWorker: f.noWorker,
		Runtime: f.runtime, Containerd: f.containerd, Bridge: f.bridge, Subnet: f.subnet,
		Log: o.Logger,
		Ready: func(n *daemon.Node) {
			id := n.Identity
			role := "worker"
			if id.Manager {
				role = "manager"
				if id.Worker {
					role = "manager and worker"
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Node %s (%s) of cluster %s is running; data in %s. Stop it with Ctrl-C, start it again with `warren start --data-dir %s`.\n",
				id.NodeID, role, id.ClusterID, o.DataDir, o.DataDir)
		},
	}
}

func newClusterInitCommand(opts *Options) *cobra.Command {
	var f nodeFlags
	var force, autolock bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a new cluster with this machine as its first manager, and run it",
		Long: `Create a new cluster: its ID, its certificate authority, join tokens and
the secret-encryption salt, all kept in --data-dir. This node becomes the
cluster's first manager and leader, and (unless --no-worker) a worker too,
so one machine is a working cluster. The command then runs the node in
the foreground until it is stopped.

The local administrator's certificate is written to <data-dir>/pki/admin.crt;
the CLI uses it to talk to the cluster (warren --data-dir <data-dir> ...).

With --autolock, the key that protects secrets is not kept in the state:
init prints an unlock key, once, and a manager that restarts (or joins)
seals and opens no secret until ` + "`warren cluster unlock`" + ` gives it the key.

With --force-new-cluster, --data-dir must hold a manager that outlived
its quorum, or a backup unpacked by ` + "`warren cluster restore`" + `: that node
becomes the only manager of the cluster, with all of its state.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			cfg := opts.nodeConfig(cmd, &f)
			ready := cfg.Ready
			cfg.Ready = func(n *daemon.Node) {
				ready(n)
				fmt.Fprintf(cmd.OutOrStdout(), "Add a worker:  warren worker join --manager %s --token \"$(warren --data-dir %s cluster join-token worker -q)\"\n", f.apiAddr, opts.DataDir)
				fmt.Fprintf(cmd.OutOrStdout(), "Add a manager: warren manager join --manager %s --token \"$(warren --data-dir %s cluster join-token manager -q)\" --api-addr HOST:PORT --advertise-addr HOST:PORT\n", f.apiAddr, opts.DataDir)
			}
			if force {
				if autolock {
					return fmt.Errorf("cli: --autolock is for a new cluster: one that --force-new-cluster restarts keeps the setting it had")
				}
				return daemon.ForceNewCluster(ctx, cfg)
			}
			if autolock {
				cfg.Autolock = true
				cfg.UnlockKey = func(key string) { printUnlockKey(cmd.OutOrStdout(), key, f.apiAddr) }
			}
			return daemon.Init(ctx, cfg)
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&force, "force-new-cluster", false, "restart the cluster from this manager alone (after a lost quorum, or a restore)")
	cmd.Flags().BoolVar(&autolock, "autolock", false, "keep the key that protects secrets out of the state: print an unlock key that restarted managers need")
	return cmd
}

// printUnlockKey shows an autolocked cluster's unlock key, the one time it
// is shown.
func printUnlockKey(w io.Writer, key, apiAddr string) {
	fmt.Fprintf(w, `This cluster is autolocked. Its unlock key, shown this once:

    %s

Keep it safe, away from the cluster's machines (a password manager, a vault):
it is stored nowhere else, and without it the cluster's secrets cannot be
read by anyone. A manager that restarts or joins seals and opens no secret
until it is unlocked with it:

    warren cluster unlock --manager %s

`, key, apiAddr)
}

func newUnlockCommand(opts *Options) *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "unlock [--key-file FILE]",
		Short: "Give the unlock key to the managers of --manager, after they restarted in an autolocked cluster",
		Long: `Give the unlock key that ` + "`warren cluster init --autolock`" + ` printed to each
manager named by --manager (one, or several separated by commas). Each
manager checks it against the cluster's data key and keeps it in memory
only; a wrong key is refused and changes nothing. A manager that started
in an autolocked cluster seals and opens no secret until it is unlocked:
unlock every manager, since any of them may come to lead.

The key is read from --key-file, or from standard input: asked for
(without echo) in a terminal, or piped in.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			text, err := readUnlockKey(cmd.InOrStdin(), cmd.ErrOrStderr(), keyFile)
			if err != nil {
				return err
			}
			if err := parseUnlockKey(text); err != nil {
				return err
			}
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			var failed []error
			for _, addr := range strings.Split(opts.Manager, ",") {
				if addr = strings.TrimSpace(addr); addr == "" {
					continue
				}
				res, err := client.Unlock(cmd.Context(), addr, text)
				if err != nil {
					failed = append(failed, fmt.Errorf("%s: %w", addr, err))
					continue
				}
				state := "is unlocked"
				if res.AlreadyUnlocked {
					state = "was unlocked already"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Manager %s at %s %s.\n", res.Manager, addr, state)
			}
			return errors.Join(failed...)
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "read the unlock key from `FILE` instead of standard input")
	return cmd
}

func newStartCommand(opts *Options) *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run the node whose data directory is --data-dir (after init or join)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			return daemon.Start(ctx, opts.nodeConfig(cmd, &f))
		},
	}
	f.runtimeFlags.add(cmd, true)
	return cmd
}

func newJoinCommand(opts *Options, role string) *cobra.Command {
	var f nodeFlags
	var manager, token string
	cmd := &cobra.Command{
		Use:   role,
		Short: "Join this machine to a cluster as a " + role,
	}
	join := &cobra.Command{
		Use:   "join --manager ADDR --token TOKEN",
		Short: "Join a cluster as a " + role + ", and run the node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if manager == "" || token == "" {
				return fmt.Errorf("cli: %s join needs --manager (a manager's API address) and --token (from `warren cluster join-token %s` on a manager)", role, role)
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			return daemon.Join(ctx, opts.nodeConfig(cmd, &f), manager, token, role == api.RoleManager)
		},
	}
	join.Flags().StringVar(&manager, "manager", "", "API `address` (host:port) of a manager of the cluster")
	join.Flags().StringVar(&token, "token", "", "join `token` from `warren cluster join-token "+role+"`")
	if role == api.RoleManager {
		f.add(join)
	} else {
		join.Flags().StringVar(&f.apiAddr, "api-addr", "", "`host:port` the node serves on: its task logs to the managers, and the API if it is promoted (default: its address toward --manager, port 8080)")
		join.Flags().StringVar(&f.raftAddr, "advertise-addr", "", "`host:port` for raft if this node is promoted (default: its address toward --manager, port 2377)")
	}
	cmd.AddCommand(join)
	return cmd
}

func newClusterInfoCommand(opts *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show the cluster's ID, leader, term and managers with their health",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			info, err := client.Cluster(cmd.Context())
			if err != nil {
				return err
			}
			if opts.Output != "table" {
				return printObject(cmd.OutOrStdout(), opts.Output, info, nil)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Cluster:     %s\nCreated:     %s\nCA digest:   %s\nLeader:      %s\nTerm:        %d\nAnswered by: %s (applied index %d)\n\n",
				info.ID, info.CreatedAt.Format("2006-01-02 15:04:05 MST"), info.CADigest, orNone(info.Leader), info.Term, info.AnsweredBy, info.Applied)
			rows := make([][]string, len(info.Managers))
			for i, m := range info.Managers {
				health := "reachable"
				if !m.Reachable {
					health = "unreachable: " + m.Error
				}
				role := "follower"
				if m.Leader {
					role = "leader"
				}
				if !m.Voter {
					role = "non-voter"
				}
				rows[i] = []string{m.ID, role, m.APIAddr, m.RaftAddr, health}
			}
			return printRows(w, "table", info, []string{"MANAGER", "ROLE", "API", "RAFT", "HEALTH"}, rows)
		},
	}
}

func newJoinTokenCommand(opts *Options) *cobra.Command {
	var rotate, quiet bool
	cmd := &cobra.Command{
		Use:       "join-token worker|manager",
		Short:     "Print the token that joins a node as a worker or manager (--rotate: replace it)",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{api.RoleWorker, api.RoleManager},
		RunE: func(cmd *cobra.Command, args []string) error {
			role := args[0]
			if role != api.RoleWorker && role != api.RoleManager {
				return fmt.Errorf("cli: join-token %q: use worker or manager", role)
			}
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			var token string
			if rotate {
				token, err = client.RotateJoinToken(cmd.Context(), role)
			} else {
				token, err = client.JoinToken(cmd.Context(), role)
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if quiet {
				fmt.Fprintln(w, token)
				return nil
			}
			if rotate {
				fmt.Fprintf(w, "The %s join token was rotated; the old one no longer works.\n", role)
			}
			fmt.Fprintf(w, "To add a %s to this cluster, run on it:\n\n    warren %s join --manager %s --token %s\n", role, role, opts.Manager, token)
			return nil
		},
	}
	cmd.Flags().BoolVar(&rotate, "rotate", false, "replace the token; nodes already joined are not affected")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the token only")
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func newBackupCommand(opts *Options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "backup --output FILE.tar.gz",
		Short: "Save a consistent copy of the cluster's state and CA, while it runs",
		Long: `Save the cluster's state, as of one committed raft entry and holding every
write acknowledged before the command started, with the cluster's CA
certificate and key. Run it on a manager: the CA key comes from its
--data-dir. The file is written with mode 0600: it holds the CA key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output == "" {
				return fmt.Errorf("cli: cluster backup needs --output FILE.tar.gz")
			}
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			var info *daemon.BackupInfo
			err = writeFileAtomic(output, 0o600, func(w io.Writer) error {
				var err error
				info, err = daemon.WriteBackup(cmd.Context(), client, opts.DataDir, w)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Backed up cluster %s as of raft index %d to %s\n", info.ClusterID, info.AppliedIndex, output)
			return nil
		},
	}
	cmd.Flags().StringVar(&output, "output", "", "`FILE` to write (a .tar.gz)")
	return cmd
}

func newRestoreCommand(opts *Options) *cobra.Command {
	var input string
	cmd := &cobra.Command{
		Use:   "restore --input FILE.tar.gz --data-dir DIR",
		Short: "Unpack a backup into an empty data directory, ready for init --force-new-cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if input == "" {
				return fmt.Errorf("cli: cluster restore needs --input FILE.tar.gz (from warren cluster backup)")
			}
			f, err := os.Open(input)
			if err != nil {
				return fmt.Errorf("cli: %w", err)
			}
			defer func() { _ = f.Close() }()
			info, err := daemon.Restore(f, opts.DataDir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Restored cluster %s as of raft index %d into %s.\nStart it with: warren cluster init --force-new-cluster --data-dir %s [--api-addr HOST:PORT --advertise-addr HOST:PORT]\n",
				info.ClusterID, info.AppliedIndex, opts.DataDir, opts.DataDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&input, "input", "", "backup `FILE` (a .tar.gz)")
	return cmd
}

// writeFileAtomic writes path through fn, in full or not at all.
func writeFileAtomic(path string, mode os.FileMode, fn func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("cli: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("cli: %w", err)
	}
	err = fn(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
