package proc

import "syscall"

// sysProcAttr makes the kernel SIGKILL a manager when the process that
// started it dies, so that a test binary killed by its timeout leaves no
// cluster behind. (Pdeathsig fires when the starting OS thread exits; the
// Go runtime only ends threads that a goroutine locked and left locked,
// which nothing here does.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
