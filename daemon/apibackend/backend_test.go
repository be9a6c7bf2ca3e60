package apibackend

import (
	"log/slog"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/mempool"
)

// fakePool is a Pool that only keeps its limit.
type fakePool struct{ limit int }

func (p *fakePool) Len() int                                             { return 0 }
func (p *fakePool) All() []chain.Transaction                             { return nil }
func (p *fakePool) Get(chain.Hash) (chain.Transaction, bool)             { return chain.Transaction{}, false }
func (p *fakePool) PendingNonce(chain.Address, mempool.StateView) uint64 { return 0 }
func (p *fakePool) Limit() int                                           { return p.limit }
func (p *fakePool) SetLimit(n int)                                       { p.limit = n }

// fakeForger keeps the forging policy as the forger does.
type fakeForger struct {
	size     int
	interval time.Duration
	pokes    int
}

func (f *fakeForger) Policy() (int, time.Duration) { return f.size, f.interval }
func (f *fakeForger) SetPolicy(size int, interval time.Duration) {
	if size > 0 {
		f.size = size
	}
	if interval > 0 {
		f.interval = interval
	}
}
func (f *fakeForger) Poke() { f.pokes++ }

// TestSetConfigRules: each invalid patch is refused with bad_request and
// changes nothing (policy, pool limit, saved settings); a valid one changes
// only what it names and is saved.
func TestSetConfigRules(t *testing.T) {
	ptr := func(v int) *int { return &v }
	ptr64 := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name  string
		patch rpc.ConfigPatch
		code  string // "" : accepted
		want  rpc.Config
	}{
		{"block size 0", rpc.ConfigPatch{BlockSize: ptr(0)}, "bad_request", rpc.Config{}},
		{"block size over max_block_txs", rpc.ConfigPatch{BlockSize: ptr(101)}, "bad_request", rpc.Config{}},
		{"interval 0", rpc.ConfigPatch{BlockIntervalMs: ptr64(0)}, "bad_request", rpc.Config{}},
		{"interval over a day", rpc.ConfigPatch{BlockIntervalMs: ptr64(24*3600*1000 + 1)}, "bad_request", rpc.Config{}},
		{"pool limit 0", rpc.ConfigPatch{PoolLimit: ptr(0)}, "bad_request", rpc.Config{}},
		{"a good size with a bad limit", rpc.ConfigPatch{BlockSize: ptr(7), PoolLimit: ptr(-1)}, "bad_request", rpc.Config{}},
		{"block size", rpc.ConfigPatch{BlockSize: ptr(100)}, "", rpc.Config{BlockSize: 100, BlockIntervalMs: 1000, PoolLimit: 50}},
		{"all three", rpc.ConfigPatch{BlockSize: ptr(3), BlockIntervalMs: ptr64(250), PoolLimit: ptr(9)}, "", rpc.Config{BlockSize: 3, BlockIntervalMs: 250, PoolLimit: 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := chain.DefaultGenesis()
			g.MaxBlockTxs = 100
			pool, forger := &fakePool{limit: 50}, &fakeForger{size: 1, interval: time.Second}
			var saved []rpc.Config
			b := New(Parts{Genesis: g, Pool: pool, Forger: forger, Log: slog.New(slog.DiscardHandler),
				SaveConfig: func(c rpc.Config) { saved = append(saved, c) }})
			before := b.Config()
			got, err := b.SetConfig(tc.patch)
			if tc.code != "" {
				if chain.CodeOf(err) != chain.ErrorCode(tc.code) {
					t.Fatalf("SetConfig = %v, want code %s", err, tc.code)
				}
				if after := b.Config(); after != before || len(saved) != 0 {
					t.Fatalf("a refused patch changed the config %+v -> %+v (saved %d)", before, after, len(saved))
				}
				return
			}
			if err != nil || got != tc.want || b.Config() != tc.want {
				t.Fatalf("SetConfig = %+v, %v; config %+v; want %+v", got, err, b.Config(), tc.want)
			}
			if len(saved) != 1 || saved[0] != tc.want {
				t.Fatalf("saved %+v, want once %+v", saved, tc.want)
			}
		})
	}
}

// TestStreamsAreLossyAndClose: a block subscriber that does not read
// keeps the first blockQueue heads and misses the rest, never stalling
// Notify; evidence events reach their subscribers; Close ends both kinds
// of stream.
func TestStreamsAreLossyAndClose(t *testing.T) {
	b := New(Parts{Genesis: chain.DefaultGenesis(), Log: slog.New(slog.DiscardHandler)})
	blocks, cancelBlocks := b.SubscribeBlocks()
	defer cancelBlocks()
	evs, cancelEvs := b.SubscribeEvidence()
	defer cancelEvs()
	for h := range uint64(blockQueue + 10) {
		b.Notify(&chain.Block{Header: chain.Header{Height: h}})
	}
	b.NotifyEvidence(chainmgr.EvidenceEvent{Type: "evidence"})
	for h := range uint64(blockQueue) {
		if blk := <-blocks; blk.Height != h {
			t.Fatalf("block %d, want %d", blk.Height, h)
		}
	}
	if ev := <-evs; ev.Type != "evidence" {
		t.Fatalf("evidence event %+v", ev)
	}
	if d := b.blocks.Stats().Dropped; d != 10 {
		t.Fatalf("%d blocks dropped, want 10", d)
	}
	b.Close()
	if _, ok := <-blocks; ok {
		t.Fatal("a block stream is open after Close")
	}
	if _, ok := <-evs; ok {
		t.Fatal("an evidence stream is open after Close")
	}
}
