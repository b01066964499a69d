package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/secrets"
)

// The keys that protect secrets: `warren secret rotate-key` here, and the
// unlock key's reading for `warren cluster unlock`.

func newSecretRotateKeyCommand(opts *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-key",
		Short: "Seal every secret again under a new data key, online (and a new key-encryption key, unless the cluster is autolocked)",
		Long: `Make a new data key on the leader and seal every secret, every version
of it, again under it, then drop the old key. Secrets stay readable
throughout, and tasks keep getting theirs. In a cluster that is not
autolocked, the key-encryption key changes too (a new salt); in an
autolocked one the unlock key stays, so unlocked managers stay unlocked.

If the leader stops part way, every secret still opens; run the command
again and it finishes the rotation that was left, with the key it made.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := newAPIClient(opts)
			if err != nil {
				return err
			}
			errOut := cmd.ErrOrStderr()
			rot, err := client.RotateDataKey(cmd.Context(), func(p api.KeyRotation) {
				if !p.Done && p.Secrets > 0 {
					fmt.Fprintf(errOut, "... %d of %d secrets sealed again\n", p.Secrets, p.Total)
				}
			})
			if err != nil {
				return err
			}
			if opts.Output != "table" {
				return printObject(cmd.OutOrStdout(), opts.Output, rot, nil)
			}
			printRotation(cmd.OutOrStdout(), rot)
			return nil
		},
	}
}

// printRotation says what a finished rotation did.
func printRotation(w io.Writer, rot *api.KeyRotation) {
	if rot.NoKey {
		fmt.Fprintln(w, "No secret was ever created, so there is no data key to rotate yet.")
		return
	}
	if rot.Resumed {
		fmt.Fprintln(w, "Finished the rotation an earlier leader left unfinished, with the data key it made.")
	}
	fmt.Fprintf(w, "Sealed %d secret(s), %d version(s) in all, again under the new data key; the old key is gone.\n", rot.Secrets, rot.Versions)
	switch {
	case rot.NewKEK:
		fmt.Fprintln(w, "The key-encryption key changed too (a new salt).")
	case !rot.Resumed:
		fmt.Fprintln(w, "The unlock key is unchanged: managers that are unlocked stay unlocked.")
	}
	if rot.Resumed {
		fmt.Fprintln(w, "Run `warren secret rotate-key` again for yet another data key.")
	}
}

// maxUnlockKeyBytes bounds what is read as an unlock key: a key is 52
// characters, a file a few more with a line break.
const maxUnlockKeyBytes = 4096

// readUnlockKey reads the unlock key from file, or from in: with a prompt
// on prompt, and without echo, when in is a terminal.
func readUnlockKey(in io.Reader, prompt io.Writer, file string) (string, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("cli: --key-file: %w", err)
		}
		return string(data), nil
	}
	if f, ok := in.(*os.File); ok {
		if restore, err := noEcho(f); err == nil {
			defer restore()
			fmt.Fprint(prompt, "Unlock key: ")
			line, err := bufio.NewReader(io.LimitReader(f, maxUnlockKeyBytes)).ReadString('\n')
			fmt.Fprintln(prompt)
			if err != nil && line == "" {
				return "", fmt.Errorf("cli: read the unlock key: %w", err)
			}
			return line, nil
		}
	}
	data, err := io.ReadAll(io.LimitReader(in, maxUnlockKeyBytes))
	if err != nil {
		return "", fmt.Errorf("cli: read the unlock key from standard input: %w", err)
	}
	if strings.TrimSpace(string(data)) == "" {
		return "", fmt.Errorf("cli: no unlock key on standard input: pipe it in, pass --key-file FILE, or run the command in a terminal to be asked for it")
	}
	return string(data), nil
}

// noEcho turns the echo of terminal f off, and returns what turns it back
// on; an error means f is not a terminal.
func noEcho(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// parseUnlockKey checks the key before any manager is called.
func parseUnlockKey(text string) error {
	key, err := secrets.ParseUnlockKey(text)
	clear(key)
	if err != nil {
		return fmt.Errorf("cli: %w", err)
	}
	return nil
}
