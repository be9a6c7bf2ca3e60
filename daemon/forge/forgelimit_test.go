package forge

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/mempool"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/keystore"
)

// costChain is a Chain that only knows its import cost.
type costChain struct {
	Chain
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
			f := &Forger{g: g, chain: costChain{per: tc.per}}
			if got := f.forgeLimit(); got != tc.want {
				t.Fatalf("forgeLimit = %d, want %d", got, tc.want)
			}
		})
	}
}

// refusingChain is a Chain whose imports fail with err.
type refusingChain struct {
	Chain
	err error
}

func (c refusingChain) ProcessOwnBlock(*chain.Block) error { return c.err }

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
			key, err := keystore.Generate()
			if err != nil {
				t.Fatal(err)
			}
			g, err := chain.DefaultGenesisParams().Build(time.Now(), []chain.Allocation{{Address: key.Address(), Balance: 1000, Stake: 1}})
			if err != nil {
				t.Fatal(err)
			}
			m := newTestChain(t, g)
			f := New(Config{Chain: refusingChain{Chain: m, err: tc.err}, Pool: emptyPool{}, Key: key, Genesis: g, Log: log, Now: time.Now})
			f.forge(m.Snapshot(), 0)
			if got := strings.TrimSpace(logs.String()); got != tc.want {
				t.Fatalf("log:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// newTestChain is a chain manager over a fresh store of g.
func newTestChain(t *testing.T, g *chain.Genesis) *chainmgr.Manager {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "chain.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Init(g); err != nil {
		st.Close()
		t.Fatal(err)
	}
	m, err := chainmgr.New(chainmgr.Config{Genesis: g, Store: st, Logger: slog.New(slog.DiscardHandler), Now: time.Now})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// emptyPool is a Pool with nothing to forge.
type emptyPool struct{}

func (emptyPool) Pending(int, mempool.StateView) []chain.Transaction { return nil }
func (emptyPool) Oldest() (time.Time, bool)                          { return time.Time{}, false }
func (emptyPool) Remove(...chain.Hash)                               {}

func dropTime(a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
