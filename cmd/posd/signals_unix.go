//go:build unix

package main

import (
	"os/signal"
	"syscall"
)

// ignoreFileSizeSignal makes a write past a file-size limit (ulimit -f, a
// quota) an error the node reports (unhealthy /healthz), not a signal
// that kills it.
func ignoreFileSizeSignal() { signal.Ignore(syscall.SIGXFSZ) }
