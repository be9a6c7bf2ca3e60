package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/daemon"
)

// TestDevnetWANFlags: the --net wan flags are parsed into the topology, and
// each bad one is refused with a message that names it.
func TestDevnetWANFlags(t *testing.T) {
	cases := []struct {
		args []string
		err  string // "" = accepted
	}{
		{[]string{"--net", "wan", "--regions", "2", "--latency", "30ms", "--latency-between", "100ms-200ms", "--loss", "0.02", "--partition", "10s+20s"}, ""},
		{[]string{"--net", "lan"}, "--net must be local or wan"},
		{[]string{"--loss", "0.1"}, "--loss only apply with --net wan"},
		{[]string{"--net", "wan", "--latency-between", "100ms"}, "--latency-between must be MIN-MAX"},
		{[]string{"--net", "wan", "--latency-between", "100ms-fast"}, `--latency-between: "fast" is not a duration`},
		{[]string{"--net", "wan", "--latency-between", "200ms-100ms"}, "below the smallest"},
		{[]string{"--net", "wan", "--loss", "1"}, "loss must be in [0, 1)"},
		{[]string{"--net", "wan", "--regions", "0"}, "regions must be at least 1"},
		{[]string{"--net", "wan", "--partition", "10s"}, "--partition must be AT+FOR"},
		{[]string{"--net", "wan", "--partition", "10s+0s"}, "--partition must be AT+FOR"},
	}
	for _, c := range cases {
		var got *DevnetOptions
		cmd := NewCmdDevnet(func(_ context.Context, o *DevnetOptions) error { got = o; return nil })
		cmd.SetArgs(c.args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		if c.err == "" {
			if err != nil {
				t.Errorf("%v: %v", c.args, err)
				continue
			}
			topo := got.WAN.Topology
			if topo.Regions != 2 || topo.Intra != 30*time.Millisecond || topo.InterMin != 100*time.Millisecond ||
				topo.InterMax != 200*time.Millisecond || topo.Loss != 0.02 {
				t.Errorf("%v: topology %+v", c.args, topo)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.err)
		}
		if got != nil {
			t.Errorf("%v: ran although refused", c.args)
		}
	}
}

// TestDevnetWANRuns: `posd devnet --net wan` starts nodes that find each
// other over the emulated links (no P2P port on the machine) and serve
// their real APIs.
func TestDevnetWANRuns(t *testing.T) {
	opts := &DevnetOptions{
		Config:   daemon.DevnetConfig{Home: t.TempDir(), Nodes: 3, Genesis: daemon.DefaultGenesisParams(), Host: "127.0.0.1"},
		Exchange: "open", LogLevel: "warn", LogFormat: "text", Out: io.Discard, Stderr: io.Discard,
	}
	cmd := NewCmdDevnet(nil)
	opts.WAN = wanOptions{Net: "wan", Between: "80ms-250ms"}
	opts.WAN.Topology.Regions = 3
	if err := opts.WAN.parse(cmd); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var peers []int
	var addrs []string
	opts.Ready = func(d *daemon.Devnet) {
		defer cancel()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			peers = peers[:0]
			for _, n := range d.Nodes {
				peers = append(peers, len(n.API().Peers()))
			}
			if peers[0] == 2 && peers[1] == 2 && peers[2] == 2 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		addrs = d.Nodes[0].API().Status().P2PAddrs
	}
	if err := devnetRun(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if len(peers) != 3 || peers[0] != 2 || peers[1] != 2 || peers[2] != 2 {
		t.Errorf("peers per node %v, want 2 each", peers)
	}
	if len(addrs) == 0 || !strings.HasPrefix(addrs[0], "/ip4/10.0.") {
		t.Errorf("node 1's p2p addresses %v: not on the emulated network", addrs)
	}
}
