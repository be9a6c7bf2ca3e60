package store

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// trimMapping drops the pages of chain.db that the process has mapped in
// through bbolt's read-only shared mapping (madvise MADV_DONTNEED). They
// stay in the kernel's page cache, so a later read maps them again with a
// minor fault and no I/O. Without it, every page a read or a fold ever
// touched stays counted in the node's resident memory until bbolt maps the
// file anew (at each 1 GiB of growth): up to 630 MiB on a syncing node of
// an 11,000,000-transaction chain (docs/PERFORMANCE.md). A read
// transaction holds bbolt's mapping lock, so the mapping cannot move while
// it is advised; the mapping is never written through, so nothing is lost.
func (s *Store) trimMapping() {
	_ = s.db.View(func(tx *bolt.Tx) error {
		size := tx.Size()
		if size <= 0 {
			return nil
		}
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, s.db.Info().Data, uintptr(size), unix.MADV_DONTNEED)
		if errno != 0 {
			return errno
		}
		return nil
	})
}
