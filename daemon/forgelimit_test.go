package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/chainmgr"
)

// costChain is a forgerChain that only knows its import cost.
type costChain struct {
	forgerChain
	per time.Duration
}

func (c costChain) ImportCostPerTx() time.Duration { return c.per }

// TestForgeLimit: the forger fills a block with what it imports in a
// sixteenth of a slot at its recent cost, within [minForgeTxs,
// max_block_txs], and fills max_block_txs before anything was measured.
func TestForgeLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		slotMs int64
		max    int
		per    time.Duration
		want   int
	}{
		{"nothing measured", 2000, 10000, 0, 10000},
		{"125 ms at 25 µs", 2000, 10000, 25 * time.Microsecond, 5000},
		{"fast: max_block_txs", 2000, 10000, time.Microsecond, 10000},
		{"slow: the floor", 2000, 10000, time.Millisecond, minForgeTxs},
		{"floor above max_block_txs", 2000, 100, time.Millisecond, 100},
		{"longer slot, larger block", 4000, 10000, 25 * time.Microsecond, 10000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := chain.DefaultGenesis()
			g.SlotMs, g.MaxBlockTxs = tc.slotMs, tc.max
			f := &forger{g: g, chain: costChain{per: tc.per}}
			if got := f.forgeLimit(); got != tc.want {
				t.Fatalf("forgeLimit = %d, want %d", got, tc.want)
			}
		})
	}
}

// refusingChain is a forgerChain whose imports fail with err.
type refusingChain struct {
	forgerChain
	err error
}

func (c refusingChain) ProcessBlockIDs(*chain.Block, []chain.Hash) error { return c.err }

// TestForgeRefusalLogLevels: a forged block that loses the fork choice (a
// better block arrived meanwhile, as while a restarted node catches up) is
// no warning; a real failure is.
func TestForgeRefusalLogLevels(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string // the log line, "" for none
	}{
		{"side block", fmt.Errorf("block x: %w", chainmgr.ErrSideBlock), "level=DEBUG msg=\"forged block not kept on the main chain: a better block arrived meanwhile\" height=1 rank=0"},
		{"known block", chainmgr.ErrKnownBlock, ""},
		{"failure", errors.New("disk full"), "level=WARN msg=\"could not forge\" height=1 err=\"disk full\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{
				Level:       slog.LevelDebug,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return dropTime(a) },
			}))
			n, err := Open(Config{Home: t.TempDir(), NewNetwork: true, NoNetwork: true, Genesis: DefaultGenesisParams(), Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			logs.Reset()
			f := n.forger
			f.chain = refusingChain{forgerChain: n.chain, err: tc.err}
			f.forge(n.chain.Snapshot(), 0)
			if got := strings.TrimSpace(logs.String()); got != tc.want {
				t.Fatalf("log:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func dropTime(a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
