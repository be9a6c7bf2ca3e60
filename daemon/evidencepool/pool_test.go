package evidencepool

import (
	"errors"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/keystore"
)

// fakeBlocks is a store of a few blocks.
type fakeBlocks map[chain.Hash]*chain.Block

func (f fakeBlocks) BlockByHash(h chain.Hash) (*chain.Block, error) {
	if b, ok := f[h]; ok {
		return b, nil
	}
	return nil, errors.New("not found")
}

func (f fakeBlocks) Blocks(from uint64, limit int) ([]*chain.Block, error)   { return nil, nil }
func (f fakeBlocks) Headers(from uint64, limit int) ([]*chain.Header, error) { return nil, nil }

type fixture struct {
	g      *chain.Genesis
	forger *keystore.Key
	g0     *chain.Block
	st     *chain.State
	blocks fakeBlocks
	p      *Pool
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	forger, _ := keystore.Generate()
	g := chain.DefaultGenesis()
	g.ChainID = "evidencepool-test"
	g.Timestamp = time.Now().Add(-time.Hour).UnixMilli()
	g.Allocations = []chain.Allocation{{Address: forger.Address(), Balance: 1000, Stake: 100}}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	f := &fixture{g: g, forger: forger, g0: g.Block(), st: g.State(), blocks: fakeBlocks{}}
	f.blocks[f.g0.Hash()] = f.g0
	f.p = New(Config{Genesis: g, Blocks: f.blocks})
	if err := f.p.Started(f.g0, f.st); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) block(parent *chain.Block, dt int64, ev ...chain.Evidence) *chain.Block {
	b := chain.NewBlock(f.g, &parent.Header, 0, parent.Timestamp+dt, nil)
	if len(ev) > 0 {
		b.SetEvidence(ev)
	}
	f.forger.SignHeader(&b.Header)
	f.blocks[b.Hash()] = b
	return b
}

// TestPoolFollowsEvents: a second header for a slot, told as a checked
// block, is pending evidence with an "evidence" event; a main-chain block
// carrying it commits it ("slashing"); reverting that block makes it
// pending again. Evidence from a peer that is malformed is its fault.
func TestPoolFollowsEvents(t *testing.T) {
	f := newFixture(t)
	p := f.p
	evs, cancel := p.Subscribe(4)
	defer cancel()
	x, y := f.block(f.g0, 10), f.block(f.g0, 11)
	p.ChainMoved(x, []*chain.Block{x}, nil, f.st)
	if len(p.Pending()) != 0 {
		t.Fatal("evidence before an equivocation")
	}
	p.BlockChecked(y, y.Hash())
	pending := p.Pending()
	if len(pending) != 1 || pending[0].Height() != 1 || pending[0].Forger() != f.forger.Address() {
		t.Fatalf("pending %+v, want one item for height 1", pending)
	}
	if ev := <-evs; ev.Type != "evidence" {
		t.Fatalf("event %q, want evidence", ev.Type)
	}
	if !p.Equivocated(f.forger.Address(), 1, f.g0.Hash()) || p.Equivocated(f.forger.Address(), 1, x.Hash()) {
		t.Fatal("Equivocated does not tell the slot")
	}
	z := f.block(x, 10, pending...)
	p.ChainMoved(z, []*chain.Block{z}, nil, f.st)
	if ev := <-evs; ev.Type != "slashing" || ev.Record.IncludedIn != 2 {
		t.Fatalf("event %+v, want a slashing in block 2", ev)
	}
	if len(p.Pending()) != 0 || p.Records()[0].IncludedIn != 2 {
		t.Fatalf("committed evidence: pending %d, records %+v", len(p.Pending()), p.Records())
	}
	p.ChainMoved(x, nil, []*chain.Block{z}, f.st)
	if len(p.Pending()) != 1 || p.Records()[0].IncludedIn != 0 {
		t.Fatal("evidence of a reverted block not pending again")
	}

	// From a peer.
	if fwd, err := p.Add(pending[0]); fwd || err != nil {
		t.Fatalf("known evidence: forward %v, err %v", fwd, err)
	}
	bad := pending[0]
	bad.A.Height, bad.B.Height = 7, 7
	cases := []struct {
		name string
		e    chain.Evidence
		code chain.ErrorCode
	}{
		{"headers signed for another height", bad, chain.ErrBadEvidence.Code},
	}
	for _, c := range cases {
		if _, err := New(Config{Genesis: f.g, Blocks: f.blocks}).Add(c.e); chain.CodeOf(err) != c.code {
			t.Fatalf("%s: %v, want %s", c.name, err, c.code)
		}
	}
}

// TestSubscribersBounded: a subscriber that does not read never blocks
// the pool, and beyond maxSubscribers none is added.
func TestSubscribersBounded(t *testing.T) {
	f := newFixture(t)
	var first <-chan Event
	for i := range maxSubscribers + 5 {
		ch, _ := f.p.Subscribe(1)
		if i == 0 {
			first = ch
		}
	}
	if n := f.p.feed.Len(); n != maxSubscribers {
		t.Fatalf("%d subscribers kept, want %d", n, maxSubscribers)
	}
	// Two equivocations, queues of one, nobody reading: the pool goes on.
	for h, parent := range []*chain.Block{f.g0, f.block(f.g0, 10)} {
		x, y := f.block(parent, 20), f.block(parent, 21)
		f.p.ChainMoved(x, []*chain.Block{x}, nil, f.st)
		f.p.BlockChecked(y, y.Hash())
		if n := len(f.p.Records()); n != h+1 {
			t.Fatalf("%d records after %d equivocations", n, h+1)
		}
	}
	if ev := <-first; ev.Type != "evidence" || ev.Record.Evidence.Height() != 1 {
		t.Fatalf("first subscriber got %+v", ev)
	}
	// Each of the 256 queues of one kept the first event and missed the second.
	if d := f.p.Dropped(); d != maxSubscribers {
		t.Fatalf("%d events dropped, want %d", d, maxSubscribers)
	}
}
