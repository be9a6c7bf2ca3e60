package chainmgr

import (
	"errors"
	"testing"

	"github.com/poslab/posd/chain"
)

// newStakedChain is newTestChain with the forger staking 100.
func newStakedChain(t *testing.T) *testChain {
	t.Helper()
	return newChainWithStake(t, 100)
}

// TestEvidenceDetectedAndSlashed: a second block for one slot, kept as a
// side block, becomes pending evidence; a block carrying it slashes the
// forger, and the pool remembers it as committed, never pending again.
func TestEvidenceDetectedAndSlashed(t *testing.T) {
	tc := newStakedChain(t)
	m := tc.m
	evs, cancel := m.EvidencePool().Subscribe(8)
	defer cancel()
	g0 := m.Head()
	x := tc.block(tc.forger, g0, 10)
	y := tc.block(tc.forger, g0, 11) // same slot, another timestamp
	if err := m.ProcessBlock(x); err != nil {
		t.Fatal(err)
	}
	if len(m.EvidencePool().Pending()) != 0 {
		t.Fatal("evidence before any equivocation")
	}
	if err := m.ProcessBlock(y); err != nil && !errors.Is(err, ErrSideBlock) {
		t.Fatal(err)
	}
	pending := m.EvidencePool().Pending()
	if len(pending) != 1 || pending[0].Forger() != tc.forger.Address() || pending[0].Height() != 1 {
		t.Fatalf("pending evidence %+v, want one item for height 1", pending)
	}
	if ev := <-evs; ev.Type != "evidence" {
		t.Fatalf("event %q, want evidence", ev.Type)
	}
	head := m.Head()
	b := chain.NewBlock(tc.g, &head.Header, 0, head.Timestamp+10, nil)
	b.SetEvidence(pending)
	tc.forger.SignHeader(&b.Header)
	if err := m.ProcessBlock(b); err != nil {
		t.Fatal(err)
	}
	if got := m.Snapshot().Account(tc.forger.Address()).Stake; got != 50 {
		t.Fatalf("stake %d after slashing, want 50", got)
	}
	recs := m.EvidencePool().Records()
	if len(recs) != 1 || recs[0].IncludedIn != 2 || recs[0].Burned != 50 {
		t.Fatalf("records %+v, want included in 2, burned 50", recs)
	}
	if ev := <-evs; ev.Type != "slashing" || ev.Record.Burned != 50 {
		t.Fatalf("event %+v, want a slashing of 50", ev)
	}
	if p := m.EvidencePool().Pending(); len(p) != 0 {
		t.Fatalf("committed evidence still pending: %d", len(p))
	}
	// From a peer: known, so not forwarded; malformed, refused as a fault.
	if fwd, err := m.EvidencePool().Add(pending[0]); fwd || err != nil {
		t.Fatalf("known evidence: forward %v, err %v", fwd, err)
	}
	bad := pending[0] // claims height 7 with headers signed for height 1
	bad.A.Height, bad.B.Height = 7, 7
	if _, err := m.EvidencePool().Add(bad); chain.CodeOf(err) != chain.ErrBadEvidence.Code || !IsPeerFault(err) {
		t.Fatalf("malformed evidence: %v", err)
	}
	// Again after a restart: the state's record refuses a second slashing.
	tc.restart()
	if fwd, err := tc.m.EvidencePool().Add(pending[0]); fwd || err != nil {
		t.Fatalf("after restart: forward %v, err %v (already slashed)", fwd, err)
	}
	if s, ok := tc.m.Snapshot().Slashed(tc.forger.Address(), 1); !ok || s.Burned != 50 || s.IncludedIn != 2 {
		t.Fatalf("slashing record after restart: %+v %v", s, ok)
	}
	if recs := tc.m.EvidencePool().Records(); len(recs) != 1 || recs[0].IncludedIn != 2 || recs[0].Burned != 50 {
		t.Fatalf("records after restart %+v, want the slashing from the chain", recs)
	}
}

// TestEvidenceFromPeer: evidence received is pending and forwarded once.
func TestEvidenceFromPeer(t *testing.T) {
	tc := newStakedChain(t)
	m := tc.m
	g0 := m.Head()
	x := tc.block(tc.forger, g0, 10)
	y := tc.block(tc.forger, g0, 11)
	if err := m.ProcessBlock(x); err != nil {
		t.Fatal(err)
	}
	e := chain.NewEvidence(g0.Seed, &x.Header, &y.Header)
	if fwd, err := m.EvidencePool().Add(e); !fwd || err != nil {
		t.Fatalf("new evidence: forward %v, err %v", fwd, err)
	}
	if fwd, _ := m.EvidencePool().Add(e); fwd {
		t.Fatal("the same evidence forwarded twice")
	}
	if len(m.EvidencePool().Pending()) != 1 {
		t.Fatal("evidence from a peer not pending")
	}
	// A key without stake signing two headers is no threat and no evidence
	// worth keeping; nor is evidence for a height this node has not reached.
	r1, r2 := tc.block(tc.rich, g0, 10), tc.block(tc.rich, g0, 11)
	if fwd, err := m.EvidencePool().Add(chain.NewEvidence(g0.Seed, &r1.Header, &r2.Header)); fwd || err != nil {
		t.Fatalf("evidence against a key without stake: forward %v, err %v", fwd, err)
	}
	f1 := tc.block(tc.forger, x, 10)
	f3, f4 := tc.block(tc.forger, f1, 10), tc.block(tc.forger, f1, 12)
	if fwd, err := m.EvidencePool().Add(chain.NewEvidence(f1.Seed, &f3.Header, &f4.Header)); fwd || err != nil {
		t.Fatalf("evidence above the head: forward %v, err %v", fwd, err)
	}
	if len(m.EvidencePool().Pending()) != 1 {
		t.Fatal("ignored evidence became pending")
	}
}
