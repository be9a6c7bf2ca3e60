// Command posd runs a node of the posd proof-of-stake network: it keeps the
// chain, forges when elected, gossips with peers and serves the HTTP API.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/fatih/color"

	"github.com/poslab/posd/internal/tune"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	ignoreFileSizeSignal()
	tune.Runtime()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := NewCmdRoot()
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, color.New(color.FgRed).Sprint("error: "+err.Error()))
		os.Exit(1)
	}
}
