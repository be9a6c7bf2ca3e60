package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
)

// buildFromFlags parses args as `posd start` (or devnet) flags and builds
// the genesis a new network would get, with the genesis node's own
// allocation (stake 1, balance 1000).
func buildFromFlags(t *testing.T, devnet bool, args []string) (*chain.Genesis, error) {
	t.Helper()
	var p chain.GenesisParams
	var exchange string
	run := func(_ context.Context, o *StartOptions) error {
		p, exchange = o.Config.Genesis, o.Exchange
		return nil
	}
	cmd := NewCmdStart(run)
	if devnet {
		cmd = NewCmdDevnet(func(_ context.Context, o *DevnetOptions) error {
			p, exchange = o.Config.Genesis, o.Exchange
			return nil
		})
	}
	cmd.SetArgs(args)
	cmd.SetContext(context.Background())
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	p.Exchange = exchange
	own := chain.Allocation{Address: chain.Address(strings.Repeat("ab", 20)), Balance: 1000, Stake: 1}
	return p.Build(time.UnixMilli(1), []chain.Allocation{own})
}

// TestGenesisV2Flags: every v2 genesis parameter has a flag on posd start
// and posd devnet, and it reaches the genesis.
func TestGenesisV2Flags(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	args := []string{"--seed-source", "block_hash", "--lot-size", "1", "--max-lots", "5000", "--min-total-stake", "1",
		"--heartbeat=false", "--heartbeat-ms", "300", "--slash-percent", "20", "--min-fee", "3", "--lab"}
	for _, devnet := range []bool{false, true} {
		g, err := buildFromFlags(t, devnet, args)
		if err != nil {
			t.Fatal(err)
		}
		if g.SeedSource != chain.SeedBlockHash || g.LotSize != 1 || g.MaxLots != 5000 || g.MinTotalStake != 1 ||
			g.Heartbeat || g.HeartbeatMs != 300 || g.SlashPercent != 20 || g.MinFee != 3 || !g.Lab {
			t.Errorf("devnet=%v: flags not in the genesis: %+v", devnet, g)
		}
		// Defaults: heartbeat on, a quarter slot (of the slot given).
		g, err = buildFromFlags(t, devnet, []string{"--slot-ms", "4000"})
		if err != nil {
			t.Fatal(err)
		}
		if !g.Heartbeat || g.HeartbeatMs != 1000 || g.SeedSource != chain.SeedVRF || g.SlashPercent != 50 || g.Lab {
			t.Errorf("devnet=%v: defaults: %+v", devnet, g)
		}
		if _, err := buildFromFlags(t, devnet, []string{"--heartbeat-ms", "2001"}); err == nil {
			t.Errorf("devnet=%v: heartbeat-ms above slot-ms accepted", devnet)
		}
	}
}

// TestStartGenesisExamplesBuild: every `posd start --genesis ...` example
// makes a valid genesis (examples stay real, not only flag names).
func TestStartGenesisExamplesBuild(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	n := 0
	for _, line := range strings.Split(NewCmdStart(nil).Example, "\n") {
		_, rest, ok := strings.Cut(line, "posd start ")
		if !ok || !strings.Contains(rest, "--genesis") {
			continue
		}
		n++
		if _, err := buildFromFlags(t, false, strings.Fields(rest)); err != nil {
			t.Errorf("example %q: %v", strings.TrimSpace(line), err)
		}
	}
	if n < 2 {
		t.Fatalf("found %d --genesis examples", n)
	}
}
