package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	wctd "github.com/warren-orchestrator/warren/backends/containerd"
)

func newImageCommand(opts *Options) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Load and list the images of this node's containerd (namespace warren)",
		Long: `Load and list the images of this node's containerd, in the namespace
Warren runs containers in. These act on this machine only: load an image
on every node that should run it, or make its registry reachable.`,
	}
	cmd.PersistentFlags().StringVar(&addr, "containerd", "", "containerd's `socket` (default "+wctd.DefaultAddress+")")

	load := &cobra.Command{
		Use:   "load FILE.tar",
		Short: "Import the images of an OCI image layout or `docker save` archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("cli: image load: %w", err)
			}
			defer f.Close()
			store, err := wctd.OpenImages(addr)
			if err != nil {
				return fmt.Errorf("cli: image load: %w", err)
			}
			defer store.Close()
			names, err := store.Load(cmd.Context(), f)
			if err != nil {
				return fmt.Errorf("cli: image load %s: %w", args[0], err)
			}
			for _, n := range names {
				fmt.Fprintf(cmd.OutOrStdout(), "Loaded image %s\n", n)
			}
			return nil
		},
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := wctd.OpenImages(addr)
			if err != nil {
				return fmt.Errorf("cli: image ls: %w", err)
			}
			defer store.Close()
			imgs, err := store.List(cmd.Context())
			if err != nil {
				return fmt.Errorf("cli: image ls: %w", err)
			}
			rows := make([][]string, len(imgs))
			for i, img := range imgs {
				rows[i] = []string{img.Name, strings.TrimPrefix(img.Digest, "sha256:")[:12], mebibytes(img.Size), img.Created.UTC().Format(time.DateTime)}
			}
			return printRows(cmd.OutOrStdout(), opts.Output, imgs, []string{"NAME", "DIGEST", "SIZE", "CREATED"}, rows)
		},
	}
	cmd.AddCommand(load, ls)
	return cmd
}

// mebibytes prints a size for people; negative means unknown.
func mebibytes(n int64) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
