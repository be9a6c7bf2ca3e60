// Command posd runs a node of the posd proof-of-stake network: it keeps the
// chain, forges when elected, gossips with peers and serves the HTTP API.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/fatih/color"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	// A write past a file-size limit (ulimit -f, a quota) is then an error
	// the node reports (unhealthy /healthz), not a signal that kills it.
	signal.Ignore(syscall.SIGXFSZ)
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := NewCmdRoot()
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, color.New(color.FgRed).Sprint("error: "+err.Error()))
		os.Exit(1)
	}
}

// gcPercent is posd's GOGC unless the environment sets one. A node under
// load allocates per transaction (decoding, pool entries, block and index
// encodings) and with Go's default of 100 the collector took ~15% of its
// CPU; at 200 a single node under poscli load committed 10–15% more
// transactions per second for a heap at most twice as large
// (docs/PERFORMANCE.md).
const gcPercent = 200

// tuneGC sets gcPercent unless GOGC is set.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}
