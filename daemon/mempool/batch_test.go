package mempool

import (
	"slices"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/testkit"
)

// TestEncodedSize: the size the pool counts is the chain codec's.
func TestEncodedSize(t *testing.T) {
	txs := []chain.Transaction{
		{},
		testkit.Transfer(alice, bob.Addr, 1<<60, 3, 1<<40),
		{Type: chain.TxType(make([]byte, 200)), ChainID: string(make([]byte, 130))},
	}
	for i := range txs {
		if got, want := encodedSize(&txs[i]), len(chain.EncodeTx(&txs[i])); got != want {
			t.Errorf("tx %d: encodedSize = %d, EncodeTx = %d bytes", i, got, want)
		}
	}
}

// countingVerifier counts the signatures it is asked about and checks them
// with the chain's batch verifier.
type countingVerifier struct {
	batchVerifier
	calls, asked int
}

func (v *countingVerifier) VerifyTxs(txs []chain.Transaction, errs []error) {
	v.calls++
	for i := range errs {
		if errs[i] == nil {
			v.asked++
		}
	}
	v.batchVerifier.VerifyTxs(txs, errs)
}

// TestAdmitBatchBadSignatures: a batch is verified in one call; only the
// transactions with bad signatures are refused (bad_signature), each at its
// own index, and those the screen refused are not verified at all.
func TestAdmitBatchBadSignatures(t *testing.T) {
	g, st, txs := benchSetup(t, 20, 5)
	bad := map[int]bool{7: true, 8: true, 63: true}
	for i := range bad {
		txs[i].Signature[5] ^= 1 // no longer valid
	}
	txs[90].Nonce = 0 // refused by the screen (bad_nonce) before any signature check
	v := &countingVerifier{batchVerifier: batchVerifier{chain.NewSigVerifier(0)}}
	p := New(g, Config{Sigs: v})
	errs, _ := p.Admit(txs, st)
	if v.calls != 1 {
		t.Errorf("verifier called %d times for one batch", v.calls)
	}
	if v.asked != len(txs)-1 {
		t.Errorf("verifier asked about %d signatures, want %d (the screened one skipped)", v.asked, len(txs)-1)
	}
	for i, err := range errs {
		switch {
		case bad[i]:
			wantCode(t, err, chain.ErrBadSignature)
		case i == 90:
			wantCode(t, err, chain.ErrBadNonce)
		case err != nil && txs[i].From != txs[90].From:
			// Senders of bad signatures leave a nonce gap behind them:
			// later nonces are queued, never refused.
			t.Errorf("tx %d: %v", i, err)
		}
	}
}

// TestReinsertLongRun: a reorg reverts the first 100 of a sender's 200
// pooled transfers, so its account nonce goes back by 100. Put back, the
// reverted ones fill the run: the 100 still pooled after them are not taken
// for gapped (nonce_gap) and evicted, whichever reverted block comes first.
func TestReinsertLongRun(t *testing.T) {
	g, st, txs := benchSetup(t, 1, 200)
	p := New(g, Config{AccountSlots: 1000})
	for i, err := range p.AddBatch(txs, st) {
		if err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
	}
	undo1 := applyBlock(t, g, st, 1, txs[:50]...)
	undo2 := applyBlock(t, g, st, 2, txs[50:100]...)
	if ev := p.Update(st); len(ev) != 0 || p.Len() != 100 {
		t.Fatalf("after the blocks: %d pooled, evictions %v", p.Len(), ev)
	}
	// The new branch holds neither block.
	st.Revert(undo2)
	st.Revert(undo1)
	p.Reinsert(append(slices.Clone(txs[50:100]), txs[:50]...), st) // newest block first
	if ev := p.Update(st); len(ev) != 0 {
		t.Fatalf("%d evicted after the reorg, the first: %v", len(ev), ev[0].Err)
	}
	if got := len(p.Pending(1000, st)); got != 200 || p.Len() != 200 {
		t.Fatalf("after the reorg: %d pooled, %d executable, want 200", p.Len(), got)
	}
	if top := p.PendingNonce(txs[0].From, st); top != 200 {
		t.Errorf("PendingNonce = %d, want 200", top)
	}
}

// TestReinsertManySenders: a reorg puts back the reverted transfers of many
// senders whose later ones are pooled (and ranked in the eviction heap):
// nothing is lost, and the pool stays consistent for what follows.
func TestReinsertManySenders(t *testing.T) {
	g, st, txs := benchSetup(t, 20, 150) // interleaved by nonce
	p := New(g, Config{})
	for i, err := range p.AddBatch(txs, st) {
		if err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
	}
	committed := txs[:20*100] // nonces 1..100 of every sender
	undo := applyBlock(t, g, st, 1, committed...)
	p.Update(st)
	if p.Len() != 20*50 {
		t.Fatalf("%d pooled after the block", p.Len())
	}
	st.Revert(undo)
	rev := slices.Clone(committed)
	slices.Reverse(rev)
	p.Reinsert(rev, st)
	if ev := p.Update(st); len(ev) != 0 {
		t.Fatalf("%d evicted, the first: %v", len(ev), ev[0].Err)
	}
	if p.Len() != len(txs) || len(p.Pending(len(txs), st)) != len(txs) {
		t.Fatalf("%d pooled, want %d", p.Len(), len(txs))
	}
	// The pool works on: a full limit makes admissions evict by the heap.
	p.SetLimit(len(txs))
	next := testkit.Transfer(testkit.KeyN(1000), txs[0].To, 10, 2, 151)
	if _, err := p.Add(next, st); err != nil && chain.CodeOf(err) != ErrPoolFull.Code {
		t.Fatalf("one more with the pool at its limit: %v", err)
	}
	applyBlock(t, g, st, 1, committed...)
	p.Update(st)
	if p.Len() > len(txs) {
		t.Errorf("%d pooled, over the limit", p.Len())
	}
}

// version gives a state a place in the chain's history, as the chain
// manager's snapshots have.
type version struct {
	*chain.State
	v uint64
}

func (s version) Version() uint64 { return s.v }

// TestLateUpdateDoesNotGoBack: an admission reads a newer state than the
// Update that follows it (the node's admissions read the newest snapshot;
// its Update runs a commit late). The late Update must not take the
// sender back to the older state, which would make its pooled later nonces
// look more than 64 past the account and evict them as gapped.
func TestLateUpdateDoesNotGoBack(t *testing.T) {
	g, st, txs := benchSetup(t, 1, 120)
	p := New(g, Config{AccountSlots: 1000})
	old := version{st.Clone(), 1}
	for i, err := range p.AddBatch(txs[:119], old) {
		if err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
	}
	applyBlock(t, g, st, 1, txs[:40]...)
	newer := version{st, 2}
	if errs, _ := p.Admit(txs[119:], newer); errs[0] != nil { // syncs the sender to the newer state
		t.Fatal(errs[0])
	}
	if ev := p.Update(old); len(ev) != 0 {
		t.Fatalf("the late Update evicted %d, the first: %v", len(ev), ev[0].Err)
	}
	// Admissions against the old view are judged by the newer one.
	if errs, _ := p.Admit(txs[:1], old); chain.CodeOf(errs[0]) != chain.ErrBadNonce.Code {
		t.Fatalf("a committed nonce admitted against a late view: %v", errs[0])
	}
	if ev := p.Update(newer); len(ev) != 0 || p.Len() != 80 {
		t.Fatalf("after the newer Update: %d pooled (want 80), evictions %v", p.Len(), ev)
	}
	if got := len(p.Pending(1000, newer)); got != 80 {
		t.Fatalf("%d executable, want 80", got)
	}
	checkInvariants(t, p)
}

// TestAdmissionBeforeReinsert: an admission that reads a reorganised state
// (a later version, the sender's nonce taken back) before the node has
// put the reverted transactions back must not evict the sender's pooled
// later nonces as gapped; Reinsert then restores the run.
func TestAdmissionBeforeReinsert(t *testing.T) {
	g, st, txs := benchSetup(t, 1, 120)
	p := New(g, Config{AccountSlots: 1000})
	for i, err := range p.AddBatch(txs[:119], version{st.Clone(), 1}) {
		if err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
	}
	undo := applyBlock(t, g, st, 1, txs[:80]...)
	if ev := p.Update(version{st.Clone(), 2}); len(ev) != 0 || p.Len() != 39 {
		t.Fatalf("after the block: %d pooled, evictions %v", p.Len(), ev)
	}
	st.Revert(undo) // the reorg: nonce back to 0
	reorged := version{st, 3}
	if errs, _ := p.Admit(txs[119:], reorged); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if p.Len() != 40 {
		t.Fatalf("%d pooled after the admission, want 40: the sender's run was evicted", p.Len())
	}
	p.Reinsert(txs[:80], reorged)
	if ev := p.Update(reorged); len(ev) != 0 {
		t.Fatalf("after Reinsert: evicted %d, the first: %v", len(ev), ev[0].Err)
	}
	if got := len(p.Pending(1000, reorged)); got != 120 {
		t.Fatalf("%d executable after the reorg, want 120", got)
	}
	checkInvariants(t, p)
}

// TestAdmitNewestLooksUnderTheLock: AdmitNewest asks for the newest view
// with the pool locked, at each of its two looks, so no Update or other
// admission can move the pool past the view while it waits for the lock.
func TestAdmitNewestLooksUnderTheLock(t *testing.T) {
	g, st, txs := benchSetup(t, 2, 3)
	p := New(g, Config{})
	looks := 0
	newest := func() StateView {
		looks++
		if p.mu.TryLock() {
			p.mu.Unlock()
			t.Error("newest was called with the pool unlocked")
		}
		return version{st, uint64(looks)}
	}
	errs, ready := p.AdmitNewest(txs, Local, newest)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
	}
	if looks != 2 || len(ready) != len(txs) {
		t.Fatalf("%d looks, %d ready; want 2 looks, %d ready", looks, len(ready), len(txs))
	}
}
