package ctdtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/warren-orchestrator/warren/backends/containerd/cninet"
)

// Network is a container network of a test's own: a bridge and subnet no
// other suite uses (the suites of `go test ./...` run at the same time on
// one machine), for daemon.Config's Bridge and Subnet or the --bridge and
// --subnet flags.
type Network struct {
	Bridge, Subnet string
}

// Networks of the suites that run nodes on containerd, one each: the
// cninet specs use wtest* and 10.231.x, the runtime's wctdtest0 and
// 10.232.0.0/24.
var (
	NetworkE2E    = Network{Bridge: "we2etest0", Subnet: "10.233.0.0/24"}
	NetworkBench  = Network{Bridge: "wbench0", Subnet: "10.234.0.0/24"}
	NetworkDaemon = Network{Bridge: "wdtest0", Subnet: "10.235.0.0/24"}
	NetworkCLI    = Network{Bridge: "wclitest0", Subnet: "10.236.0.0/24"}
)

// Remove deletes the bridge and the runtime's state of the network (its
// address allocations and records under cninet's default directories).
// Call it once the nodes using it are stopped.
func (n Network) Remove() error {
	var errs []error
	// Containers left attached (their node was killed, not stopped):
	// detach them as their node's runtime would have, owner by owner.
	stateDir := filepath.Join(cninet.DefaultStateDir, n.Bridge)
	owners, _ := os.ReadDir(filepath.Join(stateDir, "containers"))
	for _, o := range owners {
		if !o.IsDir() {
			continue
		}
		net, err := cninet.New(cninet.Config{Bridge: n.Bridge, Subnet: n.Subnet, StateDir: stateDir,
			NetnsDir: filepath.Join(cninet.DefaultNetnsDir, n.Bridge), Owner: o.Name()})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids, err := net.Attached()
		errs = append(errs, err)
		for _, id := range ids {
			errs = append(errs, net.Teardown(context.Background(), id))
		}
	}
	if _, err := os.Stat("/sys/class/net/" + n.Bridge); err == nil {
		if out, err := exec.Command("ip", "link", "delete", n.Bridge).CombinedOutput(); err != nil {
			errs = append(errs, errors.New("ip link delete "+n.Bridge+": "+string(out)))
		}
	}
	errs = append(errs, os.RemoveAll(filepath.Join(cninet.DefaultStateDir, n.Bridge)))
	errs = append(errs, os.RemoveAll(filepath.Join(cninet.DefaultNetnsDir, n.Bridge)))
	return errors.Join(errs...)
}
