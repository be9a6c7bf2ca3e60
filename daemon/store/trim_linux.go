package store

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// trimMapping drops the pages of db's file that the process has mapped in
// through bbolt's read-only shared mapping (madvise MADV_DONTNEED); the
// store calls it after every commit and every chunk of a fold. The pages
// stay in the kernel's page cache, so a later read maps them again with a
// minor fault and no I/O. Without it, every page a read, a commit or a
// fold touched stays counted in the node's resident memory until bbolt
// maps the file anew (at each 1 GiB of growth): a commit reads the pages
// the last commit wrote (bbolt writes a changed page to a new place), so
// on a syncing node of an 11,000,000-transaction chain this part reached
// 630 MiB (docs/PERFORMANCE.md). The cost follows the pages dropped (about
// 0.1 ms per MiB here; 30–45 µs with none). A read transaction holds
// bbolt's mapping lock, so the mapping cannot move while it is advised;
// nothing is ever written through the mapping, so nothing is lost.
func trimMapping(db *bolt.DB) {
	_ = db.View(func(tx *bolt.Tx) error {
		size := tx.Size()
		if size <= 0 {
			return nil
		}
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, db.Info().Data, uintptr(size), unix.MADV_DONTNEED)
		if errno != 0 {
			return errno
		}
		return nil
	})
}
