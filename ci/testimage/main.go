// Command testimage writes Warren's test image, a static busybox packed as
// an OCI image layout archive, for `warren image load` or
// `ctr -n warren images import`:
//
//	go run ./ci/testimage -o busybox.tar [-name docker.io/warren/busybox:test]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/warren-orchestrator/warren/backends/containerd/testimage"
)

func main() {
	out := flag.String("o", "", "write the archive to `FILE` (required)")
	name := flag.String("name", testimage.DefaultName, "the image's `REFERENCE`")
	busybox := flag.String("busybox", testimage.DefaultBusybox, "a statically linked busybox `BINARY`")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: testimage -o FILE [-name REFERENCE] [-busybox BINARY]")
		os.Exit(2)
	}
	if err := testimage.WriteFile(*out, testimage.Options{Name: *name, Busybox: *busybox}); err != nil {
		fmt.Fprintln(os.Stderr, "testimage:", err)
		os.Exit(1)
	}
}
