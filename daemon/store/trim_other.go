//go:build !linux

package store

import bolt "go.etcd.io/bbolt"

// trimMapping is a no-op where madvise is not used (see trim_linux.go).
func trimMapping(*bolt.DB) {}
