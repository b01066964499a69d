// Command warren is the command-line interface and daemon entry point of the
// Warren container orchestrator. All behaviour lives in package cli; main only
// hands it the process's arguments, streams and environment.
package main

import (
	"os"

	"github.com/warren-orchestrator/warren/cmd/warren/cli"
)

func main() {
	os.Exit(cli.Execute(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}
