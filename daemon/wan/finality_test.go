package wan

import (
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
)

// testChain is blocks 1..n on top of genesis, told apart from another
// branch by tag (in the timestamps).
func testChain(n int, tag int64) []*chain.Block {
	var bs []*chain.Block
	var prev chain.Hash
	for h := 1; h <= n; h++ {
		b := &chain.Block{Header: chain.Header{Height: uint64(h), PrevHash: prev, Timestamp: tag*1000 + int64(h)}}
		bs = append(bs, b)
		prev = b.Hash()
	}
	return bs
}

func cpOf(b *chain.Block) chain.Checkpoint { return chain.Checkpoint{Height: b.Height, Hash: b.Hash()} }

// newTestRecorder is a recorder of n nodes' finality with no nodes behind
// it (applyFinal and checkImport only).
func newTestRecorder(n int) *Recorder {
	r := &Recorder{seen: map[chain.Hash][]time.Time{}, height: map[chain.Hash]uint64{}, changed: make(chan struct{}, 1)}
	r.fin.finalOf = map[uint64]chain.Hash{}
	r.fin.sent = map[txKey]sentTx{}
	for range n {
		r.added = append(r.added, time.Time{})
		r.fin.finalH = append(r.fin.finalH, 0)
		r.fin.marks = append(r.fin.marks, nil)
	}
	return r
}

// testFinal is applyFinal with the walk a node would make: its chain above
// its previous final height up to cp.
func (r *Recorder) testFinal(i int, cp chain.Checkpoint, at time.Time, chainOf []*chain.Block) {
	prev := r.fin.finalH[i]
	var bs []*chain.Block
	for _, b := range chainOf {
		if b.Height > prev && b.Height <= cp.Height {
			bs = append(bs, b)
		}
	}
	r.applyFinal(i, cp, at, prev, prev+1, bs)
}

// TestFinalInvariant: the recorder finds a final block reverted or two
// nodes' final blocks in conflict, and times what became final.
func TestFinalInvariant(t *testing.T) {
	a, b := testChain(6, 1), testChain(6, 2)
	t0 := time.Unix(1000, 0)
	cases := []struct {
		name string
		run  func(r *Recorder)
		want string // in a violation; "" none
	}{
		{"one chain, two nodes", func(r *Recorder) {
			r.testFinal(0, cpOf(a[2]), t0, a)
			r.testFinal(1, cpOf(a[1]), t0, a)
			r.testFinal(0, cpOf(a[5]), t0, a)
			r.testFinal(1, cpOf(a[5]), t0, a)
		}, ""},
		{"two nodes final on two branches", func(r *Recorder) {
			r.testFinal(0, cpOf(a[2]), t0, a)
			r.testFinal(1, cpOf(b[3]), t0, b)
		}, "another node's final block"},
		{"a node's final height goes back, its blocks kept", func(r *Recorder) {
			r.testFinal(0, cpOf(a[3]), t0, a)
			r.testFinal(0, cpOf(a[1]), t0, a)
			if r.fin.backsteps != 1 {
				r.fin.violate("backsteps %d, want 1", r.fin.backsteps)
			}
		}, "final height went back from 4 to 2"},
		{"a node's final checkpoint reported twice", func(r *Recorder) {
			r.testFinal(0, cpOf(a[3]), t0, a)
			r.testFinal(0, cpOf(a[3]), t0, a)
		}, ""},
		{"a node's final checkpoint below its final height differs", func(r *Recorder) {
			r.testFinal(0, cpOf(a[3]), t0, a)
			r.testFinal(0, cpOf(b[1]), t0, b)
		}, "where"},
		{"a node's chain lacks its checkpoint", func(r *Recorder) {
			r.testFinal(0, cpOf(a[3]), t0, b)
		}, "but its main chain has"},
		{"a node's next final block leaves the previous one", func(r *Recorder) {
			r.testFinal(0, cpOf(a[2]), t0, a)
			mixed := append(append([]*chain.Block{}, a[:3]...), b[3:]...)
			r.testFinal(0, cpOf(b[4]), t0, mixed)
		}, "not on the final"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTestRecorder(2)
			c.run(r)
			got := strings.Join(r.fin.violations, "; ")
			if c.want == "" && got != "" {
				t.Fatalf("violations %q, want none", got)
			}
			if c.want != "" && !strings.Contains(got, c.want) {
				t.Fatalf("violations %q, want one saying %q", got, c.want)
			}
		})
	}
}

// TestImportBelowFinal: an import at or below a node's final height that
// is not the final block there is suspect; the final block itself (a late
// report) and anything above are not.
func TestImportBelowFinal(t *testing.T) {
	a, b := testChain(4, 1), testChain(4, 2)
	r := newTestRecorder(1)
	r.testFinal(0, cpOf(a[2]), time.Unix(1000, 0), a)
	for _, c := range []struct {
		blk  *chain.Block
		want bool
	}{{a[1], false}, {b[1], true}, {b[2], true}, {b[3], false}, {a[3], false}} {
		if got := r.checkImport(0, c.blk.Hash(), c.blk.Height); got != c.want {
			t.Errorf("import of %d (%s): suspect %v, want %v", c.blk.Height, c.blk.Hash(), got, c.want)
		}
	}
}

// TestTimeToFinal: a block is timed from its first sighting, a transfer
// from its sending, on the node it was sent to only.
func TestTimeToFinal(t *testing.T) {
	a := testChain(2, 1)
	tx := chain.Transaction{Type: chain.TxTransfer, From: "from", Nonce: 7}
	a[1].Transactions = []chain.Transaction{tx}
	r := newTestRecorder(2)
	t0 := time.Unix(1000, 0)
	r.seen[a[1].Hash()] = []time.Time{t0.Add(time.Second), t0.Add(1200 * time.Millisecond)}
	r.Sent(1, tx, t0)
	r.testFinal(0, cpOf(a[1]), t0.Add(3*time.Second), a)
	if len(r.fin.txTTF) != 0 {
		t.Fatalf("transfer timed on node 0, sent to node 1")
	}
	r.testFinal(1, cpOf(a[1]), t0.Add(4*time.Second), a)
	if len(r.fin.txTTF) != 1 || r.fin.txTTF[0] != 4*time.Second {
		t.Fatalf("transfer times %v, want [4s]", r.fin.txTTF)
	}
	// Block 2 seen first at t0+1s: final 2 s later on node 0, 3 s on node 1
	// (block 1 was never seen: not timed).
	if want := []time.Duration{2 * time.Second, 3 * time.Second}; len(r.fin.blockTTF) != 2 || r.fin.blockTTF[0] != want[0] || r.fin.blockTTF[1] != want[1] {
		t.Fatalf("block times %v, want %v", r.fin.blockTTF, want)
	}
}
