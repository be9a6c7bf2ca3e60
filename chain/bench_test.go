package chain

import (
	"crypto/ed25519"
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
