package proc

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
)

// Package is the import path of the warren command.
const Package = "github.com/warren-orchestrator/warren/cmd/warren"

// goFallback is where CI installs Go, for runs without go on PATH.
const goFallback = "/usr/local/go/bin/go"

// ErrBuild is wrapped by the error for a warren binary that did not build.
var ErrBuild = errors.New("proc: build warren")

// Build compiles the warren command into dir and returns the binary's
// path. It runs the go command on PATH, else /usr/local/go/bin/go, in the
// caller's working directory, which must be inside this module (a test's
// is: its package's directory).
func Build(ctx context.Context, dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = goFallback
	}
	bin := filepath.Join(dir, "warren")
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, Package).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s build -o %s %s: %w\n%s", ErrBuild, goBin, bin, Package, err, out)
	}
	return bin, nil
}
