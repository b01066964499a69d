// Package e2e holds the specs that run Warren as its users do: real warren
// processes, built from this tree, started with the CLI, talking over TCP
// with mutual TLS, and killed with SIGKILL. Everything is in _test files
// but the process harness, e2e/proc, which bench/ uses too.
//
// The specs are labelled "integ": they need no root and no network
// namespaces, only a loopback interface (on Linux each manager gets its
// own 127.0.0.x address).
package e2e
