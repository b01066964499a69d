package orchestrator_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// listedPackage is the part of `go list -json` output the import guard reads.
type listedPackage struct {
	ImportPath string
	DepOnly    bool // false for the packages the pattern named (the roots)
	Imports    []string
}

// forbiddenImport reports whether the core may not depend on path: backends,
// the CLI wiring, and the libraries only backends may use.
func forbiddenImport(modPath, path string) bool {
	under := func(root string) bool { return path == root || strings.HasPrefix(path, root+"/") }
	return under("go.etcd.io/bbolt") ||
		strings.HasPrefix(path, "github.com/hashicorp/raft") || // raft, raft-boltdb, raft-wal, ...
		under("github.com/containerd") ||
		under("golang.zx2c4.com") ||
		under("github.com/vishvananda") ||
		under(modPath+"/backends") ||
		under(modPath+"/cmd")
}

// importViolations returns one message per edge from an allowed package to a
// forbidden one, with the shortest import chain from a root package to it.
func importViolations(modPath string, pkgs []listedPackage) []string {
	byPath := map[string]listedPackage{}
	var queue []string
	parent := map[string]string{}
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
		if !p.DepOnly {
			queue = append(queue, p.ImportPath)
			parent[p.ImportPath] = ""
		}
	}
	slices.Sort(queue)
	// Breadth-first from the roots through allowed packages only, so each
	// reported chain is a shortest one and names the edge that crosses over.
	var out []string
	for len(queue) > 0 {
		from := queue[0]
		queue = queue[1:]
		for _, to := range byPath[from].Imports {
			if forbiddenImport(modPath, to) {
				out = append(out, fmt.Sprintf("%s imports %s (chain: %s -> %s)",
					from, to, strings.Join(chain(parent, from), " -> "), to))
				continue
			}
			if _, seen := parent[to]; !seen {
				parent[to] = from
				queue = append(queue, to)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func chain(parent map[string]string, p string) []string {
	var c []string
	for ; p != ""; p = parent[p] {
		c = append(c, p)
	}
	slices.Reverse(c)
	return c
}

// listDeps runs `go list -deps` on patterns in dir. -e keeps a package that
// does not build yet in the graph: its imports are what this guard is about.
func listDeps(dir string, patterns ...string) []listedPackage {
	GinkgoHelper()
	args := append([]string{"list", "-e", "-deps", "-json=ImportPath,DepOnly,Imports"}, patterns...)
	dec := json.NewDecoder(strings.NewReader(goCmd(dir, args...)))
	var pkgs []listedPackage
	for {
		var p listedPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs
		}
		Expect(err).NotTo(HaveOccurred())
		pkgs = append(pkgs, p)
	}
}

var _ = Describe("Orchestrator imports", func() {
	When("the packages under orchestrator/ are listed with their dependencies", func() {
		It("depends on no backend, no cmd/ and no backend-only library", func() {
			pkgs := listDeps(modRoot, "./orchestrator/...")
			Expect(pkgs).To(ContainElement(HaveField("ImportPath", modPath+"/orchestrator")))
			Expect(importViolations(modPath, pkgs)).To(BeEmpty(),
				"orchestrator/ must stay free of I/O backends; move the dependency to backends/ behind an interface declared in orchestrator/")
		})
	})

	When("given a synthetic dependency graph", func() {
		const mod = "example.com/w"
		root := func(path string, imports ...string) listedPackage {
			return listedPackage{ImportPath: path, Imports: imports}
		}
		dep := func(path string, imports ...string) listedPackage {
			return listedPackage{ImportPath: path, DepOnly: true, Imports: imports}
		}
		DescribeTable("reports each forbidden edge with its chain",
			func(pkgs []listedPackage, want []string) {
				Expect(importViolations(mod, pkgs)).To(Equal(want))
			},
			Entry("clean graph", []listedPackage{
				root(mod+"/orchestrator", "fmt", mod+"/orchestrator/types"),
				root(mod+"/orchestrator/types", "time"),
				dep("fmt"), dep("time"),
				dep("go.etcd.io/bboltish"), // a prefix is not a parent path
			}, []string(nil)),
			Entry("direct import of bbolt", []listedPackage{
				root(mod+"/orchestrator/state", "go.etcd.io/bbolt"),
				dep("go.etcd.io/bbolt", "golang.org/x/sys/unix"),
			}, []string{
				mod + "/orchestrator/state imports go.etcd.io/bbolt (chain: " + mod + "/orchestrator/state -> go.etcd.io/bbolt)",
			}),
			Entry("a backend reached through a third-party package", []listedPackage{
				root(mod+"/orchestrator", "example.org/lib"),
				dep("example.org/lib", "github.com/hashicorp/raft-boltdb/v2"),
				dep("github.com/hashicorp/raft-boltdb/v2", "go.etcd.io/bbolt"),
			}, []string{
				"example.org/lib imports github.com/hashicorp/raft-boltdb/v2 (chain: " + mod + "/orchestrator -> example.org/lib -> github.com/hashicorp/raft-boltdb/v2)",
			}),
			Entry("the module's own backends and cmd", []listedPackage{
				root(mod+"/orchestrator/agent", mod+"/backends/containerd", mod+"/cmd/warren/cli"),
				dep(mod+"/backends/containerd", "github.com/containerd/containerd/v2/client"),
			}, []string{
				mod + "/orchestrator/agent imports " + mod + "/backends/containerd (chain: " + mod + "/orchestrator/agent -> " + mod + "/backends/containerd)",
				mod + "/orchestrator/agent imports " + mod + "/cmd/warren/cli (chain: " + mod + "/orchestrator/agent -> " + mod + "/cmd/warren/cli)",
			}),
			Entry("WireGuard and netlink", []listedPackage{
				root(mod+"/orchestrator", "golang.zx2c4.com/wireguard/wgctrl", "github.com/vishvananda/netlink"),
			}, []string{
				mod + "/orchestrator imports github.com/vishvananda/netlink (chain: " + mod + "/orchestrator -> github.com/vishvananda/netlink)",
				mod + "/orchestrator imports golang.zx2c4.com/wireguard/wgctrl (chain: " + mod + "/orchestrator -> golang.zx2c4.com/wireguard/wgctrl)",
			}),
		)
	})
})
