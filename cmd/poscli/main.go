// Command poscli is the wallet and explorer of posd: it keeps keys, signs
// transactions locally and sends them to a node, and explores the node's
// chain over its HTTP API (docs/API.md). See README.md in this directory.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], SystemFactory())
	stop()
	os.Exit(code)
}
