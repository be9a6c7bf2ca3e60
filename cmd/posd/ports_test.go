package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/daemon"
)

// TestSecondNodeOnTakenP2PPortRefuses: a node already holds a P2P port
// (libp2p binds it with SO_REUSEPORT); `posd start` on the same port must
// refuse with "address already in use" instead of sharing it.
func TestSecondNodeOnTakenP2PPortRefuses(t *testing.T) {
	p2pPort := freePort(t)
	first, err := daemon.Open(daemon.Config{Home: t.TempDir(), NewNetwork: true, Genesis: daemon.DefaultGenesisParams(),
		Host: "127.0.0.1", APIPort: 0, P2PPort: p2pPort, NoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	opts := &StartOptions{Config: daemon.Config{Home: t.TempDir(), NewNetwork: true, Genesis: daemon.DefaultGenesisParams(),
		Host: "127.0.0.1", APIPort: freePort(t), P2PPort: p2pPort, NoJoin: true},
		LogLevel: "info", LogFormat: "text", Stderr: io.Discard, Exchange: "open"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = startRun(ctx, opts)
	if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "--p2p-port") {
		t.Fatalf("second node on P2P port %d: %v, want address already in use", p2pPort, err)
	}

	// and the API port likewise
	opts.Config.P2PPort = freePort(t)
	opts.Config.APIPort = portOf(t, first.APIURL())
	if err := startRun(ctx, opts); err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "--api-port") {
		t.Fatalf("second node on the API port: %v, want address already in use", err)
	}
}

func portOf(t *testing.T, url string) int {
	t.Helper()
	i := strings.LastIndex(url, ":")
	var p int
	for _, c := range url[i+1:] {
		p = p*10 + int(c-'0')
	}
	return p
}

// TestDevnetOnTakenPortRefuses: a devnet whose P2P ports another devnet
// holds is refused before any node starts.
func TestDevnetOnTakenPortRefuses(t *testing.T) {
	p2pPort := freePort(t)
	first, err := daemon.Open(daemon.Config{Home: t.TempDir(), NewNetwork: true, Genesis: daemon.DefaultGenesisParams(),
		Host: "127.0.0.1", APIPort: 0, P2PPort: p2pPort, NoJoin: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	opts := &DevnetOptions{
		Config:   daemon.DevnetConfig{Home: t.TempDir(), Nodes: 1, Genesis: daemon.DefaultGenesisParams(), Host: "127.0.0.1", APIPort: freePort(t), P2PPort: p2pPort},
		Exchange: "open", LogLevel: "warn", LogFormat: "text", Out: io.Discard, Stderr: io.Discard,
	}
	err = devnetRun(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "node 1 P2P port") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("devnet on a taken P2P port: %v", err)
	}
}
