package bench

import (
	"fmt"
	"syscall"
)

// tmpfsMagic is TMPFS_MAGIC from linux/magic.h.
const tmpfsMagic = 0x01021994

// checkOnDisk refuses a directory on tmpfs, where fsync returns without
// touching a disk and the write benchmarks would measure nothing.
func checkOnDisk(dir string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if st.Type == tmpfsMagic {
		return fmt.Errorf("%s is on tmpfs, where fsync is free: set TMPDIR to a directory on a real disk", dir)
	}
	return nil
}
