// Package e2e holds the specs that run Warren as its users do: real warren
// processes, built from this tree, started with the CLI, talking over TCP
// with mutual TLS, and killed with SIGKILL. The specs are _test files; the
// process harness they share with bench/ is e2e/proc.
//
// The specs are labelled "integ": they need no root and no network
// namespaces, only a loopback interface (on Linux each manager gets its
// own 127.0.0.x address).
package e2e
