//go:build !linux

package store

// trimMapping is a no-op where madvise is not used (see trim_linux.go).
func (s *Store) trimMapping() {}
