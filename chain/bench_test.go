package chain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
)

// BenchmarkEd25519Verify is the bare signature check, the yardstick for
// BenchmarkValidateTransfer (the design allows at most 1.3x).
func BenchmarkEd25519Verify(b *testing.B) {
	priv := testKey("alice")
	pub := priv.Public().(ed25519.PublicKey)
	tx := signedTx(TxTransfer, "alice", testAddr("bob"), 5, 1, 1)
	msg := tx.SigningBytes()
	sig := ed25519.Sign(priv, msg)
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify failed")
		}
	}
}

// BenchmarkValidateTransfer is full stateless validation of a transfer,
// signature included.
func BenchmarkValidateTransfer(b *testing.B) {
	tx := signedTx(TxTransfer, "alice", testAddr("bob"), 5, 1, 1)
	for b.Loop() {
		if err := tx.Validate(testChainID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply1000Transfers applies a block of 1000 transfers from 100
// senders to the state (signatures are checked elsewhere) and reverts it
// outside the timer.
func BenchmarkApply1000Transfers(b *testing.B) {
	g := DefaultGenesis()
	g.ChainID = testChainID
	const senders = 100
	keys := make([]ed25519.PrivateKey, senders)
	for i := range keys {
		keys[i] = testKey(fmt.Sprint("sender", i))
		g.Allocations = append(g.Allocations, Allocation{Address: AddressOf(keys[i].Public().(ed25519.PublicKey)), Balance: 1 << 40, Stake: 1})
	}
	txs := make([]Transaction, 0, 1000)
	for i := 0; i < 1000; i++ {
		tx := Transaction{Type: TxTransfer, ChainID: testChainID, To: testAddr(fmt.Sprint("to", i%300)), Amount: 3, Fee: 1, Nonce: uint64(i/senders + 1)}
		tx.Sign(keys[i%senders])
		txs = append(txs, tx)
	}
	blk := &Block{Header: Header{Height: 1, Forger: g.Allocations[0].Address}, Transactions: txs}
	st := g.State()
	for b.Loop() {
		undo, err := st.Apply(blk, g)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st.Revert(undo)
		b.StartTimer()
	}
}

func BenchmarkEncodeDecodeBlock1000(b *testing.B) {
	txs := make([]Transaction, 1000)
	for i := range txs {
		txs[i] = signedTx(TxTransfer, "alice", testAddr("bob"), 5, 1, uint64(i+1))
	}
	blk := &Block{Header: Header{Height: 1}, Transactions: txs}
	for b.Loop() {
		if _, err := DecodeBlock(EncodeBlock(blk)); err != nil {
			b.Fatal(err)
		}
	}
}

// worstState is a state at the max_lots bound: all lots with one staker,
// or one lot each for max_lots stakers (the two extremes of the election's
// cost: the longest hash chain, and the most stakers to sort).
func worstState(b *testing.B, election string, stakers int) (*Genesis, *State, *Header) {
	g := DefaultGenesis()
	g.ChainID, g.Timestamp, g.Election = testChainID, 1, election
	per := g.MaxLots / uint64(stakers)
	for i := range stakers {
		var a [20]byte
		a[0], a[1], a[2] = byte(i>>16), byte(i>>8), byte(i)
		g.Allocations = append(g.Allocations, Allocation{Address: Address(fmt.Sprintf("%x", a)), Stake: per})
	}
	if err := g.Validate(); err != nil {
		b.Fatal(err)
	}
	st := g.State()
	if lots := st.Lots(g.LotSize); lots != g.MaxLots {
		b.Fatalf("%d lots, want max_lots %d", lots, g.MaxLots)
	}
	return g, st, &g.Block().Header
}

// benchElect is one election as a node runs it on a new parent whose
// block changed a stake: the lot table brought up to date, then the
// ranking on a new seed.
func benchElect(b *testing.B, election string, stakers int) {
	g, st, parent := worstState(b, election, stakers)
	ElectionTable(g, st) // built once, when the node starts
	a := g.Allocations[0].Address
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		parent.Seed[0], parent.Seed[1] = byte(i), byte(i>>8)
		acc := st.Account(a)
		acc.Stake ^= 1 // a block changed a stake
		st.SetAccount(a, acc)
		if _, err := Elect(g, parent, st); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWorstElection* are the worst elections valid transactions can
// reach: max_lots lots (the v2 rules: each must cost < 50 ms on 2 cores).
func BenchmarkWorstElectionLotteryOneStaker(b *testing.B)  { benchElect(b, "lottery", 1) }
func BenchmarkWorstElectionLotteryAllStakers(b *testing.B) { benchElect(b, "lottery", DefaultMaxLots) }
func BenchmarkWorstElectionWeightedOneStaker(b *testing.B) { benchElect(b, "weighted", 1) }
func BenchmarkWorstElectionWeightedAllStakers(b *testing.B) {
	benchElect(b, "weighted", DefaultMaxLots)
}

// BenchmarkElectionTableRebuild is the lot table built from scratch for
// max_lots stakers: what a node pays once when it starts.
func BenchmarkElectionTableRebuild(b *testing.B) {
	g, st, _ := worstState(b, "lottery", DefaultMaxLots)
	b.ReportAllocs()
	for b.Loop() {
		st.table.Store(nil)
		ElectionTable(g, st)
	}
}

// block1000 is a block of 1000 signed transfers from 50 senders.
func block1000(b *testing.B) (*Genesis, *Block) {
	g := DefaultGenesis()
	g.ChainID = testChainID
	keys := make([]ed25519.PrivateKey, 50)
	for i := range keys {
		keys[i] = testKey(fmt.Sprint("bench sender ", i))
	}
	txs := make([]Transaction, 1000)
	for i := range txs {
		txs[i] = Transaction{Type: TxTransfer, ChainID: testChainID, To: testAddr("bob"), Amount: 1, Nonce: uint64(i/len(keys) + 1)}
		txs[i].Sign(keys[i%len(keys)])
	}
	return g, &Block{Transactions: txs}
}

// BenchmarkCheckBlockTxs1000 is the stateless check of every transaction
// of a 1000-transaction block, signatures included (CheckBlockTxs with no
// cache of admitted signatures: a block from a peer).
func BenchmarkCheckBlockTxs1000(b *testing.B) {
	g, blk := block1000(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckBlockTxs(g, blk, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckBlockTxs1000OneBad is the same block with one bad
// signature in the middle: bisection must keep it near the all-good cost.
func BenchmarkCheckBlockTxs1000OneBad(b *testing.B) {
	g, blk := block1000(b)
	blk.Transactions[500].Signature = blk.Transactions[501].Signature
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckBlockTxs(g, blk, nil); err == nil {
			b.Fatal("bad signature accepted")
		}
	}
}

// BenchmarkBlockSigs1000 compares, in one run (so a busy machine slows
// every variant alike), the ways to check the 1000 signatures of a block
// from a peer, each with the stateless rules and on both cores:
// v1's crypto/ed25519 one at a time, ZIP-215 one at a time (voi), and the
// ZIP-215 batch verifier with cached expanded keys, with and without one
// bad signature. Compare with benchstat -col /verify.
func BenchmarkBlockSigs1000(b *testing.B) {
	g, blk := block1000(b)
	bad := &Block{Transactions: append([]Transaction(nil), blk.Transactions...)}
	bad.Transactions[500].Signature = bad.Transactions[501].Signature
	stdlib := func(tx *Transaction) error {
		if err := tx.CheckStateless(g.ChainID); err != nil {
			return err
		}
		if !ed25519.Verify(tx.PublicKey[:], tx.SigningBytes(), tx.Signature[:]) {
			return ErrBadSignature
		}
		return nil
	}
	zip215Singles := func(tx *Transaction) error { return tx.Validate(g.ChainID) }
	for _, v := range []struct {
		name    string
		blk     *Block
		verify  TxVerifier
		wantErr bool
	}{
		{"stdlib", blk, stdlib, false},
		{"zip215", blk, zip215Singles, false},
		{"batch", blk, nil, false},
		{"batch-onebad", bad, nil, true},
	} {
		b.Run("verify="+v.name, func(b *testing.B) {
			for b.Loop() {
				if err := CheckBlockTxs(g, v.blk, v.verify); (err != nil) != v.wantErr {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(v.blk.Transactions))*float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
		})
	}
}

// BenchmarkCheckHeader is the full header check of a block on its parent
// (v2: signature and ECVRF seed proof), what sync pays per block besides
// the transactions.
func BenchmarkCheckHeader(b *testing.B) {
	g := DefaultGenesis()
	g.ChainID, g.Timestamp = testChainID, 1
	g.Allocations = []Allocation{{Address: testAddr("alice"), Stake: 1}}
	parent := g.Block().Header
	blk := NewBlock(g, &parent, 0, 2, nil)
	blk.Header.Sign(testKey("alice"))
	cands := []Address{testAddr("alice")}
	for b.Loop() {
		if err := CheckHeader(g, &parent, blk, cands, 10); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBatchChunkSize checks 4000 signatures (50 senders, expanded keys
// cached) in batches of each size on one goroutine: the figures behind
// minBatchChunk and maxBatchChunk. Run with -cpu 1.
func BenchmarkBatchChunkSize(b *testing.B) {
	_, blk := block1000(b)
	var txs []Transaction
	for range 4 {
		txs = append(txs, blk.Transactions...)
	}
	items := NewSigVerifier(0).prepareAll(txs)
	for _, n := range []int{64, 256, 500, 1000, 2000, 4000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for b.Loop() {
				for lo := 0; lo < len(items); lo += n {
					if !batchOK(items[lo:min(lo+n, len(items))]) {
						b.Fatal("a good batch refused")
					}
				}
			}
			b.ReportMetric(float64(len(items)*b.N)/b.Elapsed().Seconds(), "sigs/s")
		})
	}
}

// BenchmarkBlockOnStateSize is the state's share of a block on states of
// 10^3, 10^5 and 10^6 accounts: a copy for the snapshot (as the node
// makes after each commit) and a block of 1000 transfers from 500
// senders to accounts all over the state. Signatures are not involved.
func BenchmarkBlockOnStateSize(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("accounts=%d", n), func(b *testing.B) {
			g := DefaultGenesis()
			g.ChainID = testChainID
			st := NewState()
			senders := make([]Address, 500)
			for i := range senders {
				senders[i] = testAddr(fmt.Sprint("sender ", i))
				st.SetAccount(senders[i], Account{Balance: 1 << 40})
			}
			filler := make([]Address, n-len(senders))
			for i := range filler {
				h := sha256.Sum256(fmt.Appendf(nil, "filler %d", i))
				filler[i] = Address(hex.EncodeToString(h[:20]))
				st.SetAccount(filler[i], Account{Balance: 1})
			}
			blocks := make([]*Block, b.N)
			for k := range blocks {
				blk := &Block{Header: Header{Height: uint64(k + 1), Forger: senders[0]}}
				for i := range 1000 {
					blk.Transactions = append(blk.Transactions, Transaction{Type: TxTransfer, ChainID: testChainID, From: senders[i%500],
						To: filler[(k*1000+i)*7919%len(filler)], Amount: 1, Fee: 1, Nonce: uint64(2*k + i/500 + 1)})
				}
				blocks[k] = blk
			}
			var snap *State
			b.ReportAllocs()
			b.ResetTimer()
			for k := range b.N {
				if _, err := st.Apply(blocks[k], g); err != nil {
					b.Fatal(err)
				}
				snap = st.Clone()
				blocks[k] = nil
			}
			_ = snap
		})
	}
}
