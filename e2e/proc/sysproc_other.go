//go:build !linux

package proc

import "syscall"

// sysProcAttr is nil where there is no parent-death signal: a test binary
// killed by its timeout may leave managers running there.
func sysProcAttr() *syscall.SysProcAttr { return nil }
