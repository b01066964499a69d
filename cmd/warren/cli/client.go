package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/warren-orchestrator/warren/backends/clock"
	"github.com/warren-orchestrator/warren/backends/pki"
	"github.com/warren-orchestrator/warren/daemon"
	"github.com/warren-orchestrator/warren/orchestrator/api"
)

// newAPIClient connects the CLI to the managers of --manager (a comma
// separated list) with the administrator's certificate from the data
// directory, which `warren cluster init` wrote.
func newAPIClient(opts *Options) (*api.Client, error) {
	dir := filepath.Join(opts.DataDir, daemon.PKIDir)
	pool, err := pki.LoadCAPool(dir)
	if err != nil {
		return nil, fmt.Errorf("%w (the CLI reads the cluster's CA and the admin certificate from --data-dir %s)", err, opts.DataDir)
	}
	cert, err := pki.LoadCert(dir, daemon.AdminCertName)
	if err != nil {
		return nil, fmt.Errorf("%w (the admin certificate is made by `warren cluster init`; run the CLI with that node's --data-dir)", err)
	}
	var managers []string
	for _, m := range strings.Split(opts.Manager, ",") {
		if m = strings.TrimSpace(m); m != "" {
			managers = append(managers, m)
		}
	}
	return api.NewClient(api.ClientConfig{
		Managers: managers,
		TLS:      pki.ClientConfig(pool, cert),
		Wait:     clock.Wall{}.Wait,
	})
}

// signalContext ends on SIGINT or SIGTERM: a node shuts down cleanly.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// printRows writes a table with a header, or the objects as JSON/YAML.
func printRows(w io.Writer, format string, v any, header []string, rows [][]string) error {
	if format != "table" {
		return printObject(w, format, v, nil)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
