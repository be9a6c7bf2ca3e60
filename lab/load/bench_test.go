package load

import (
	"crypto/ed25519"
	"testing"

	"github.com/poslab/posd/chain"
)

// BenchmarkEd25519VerifyAllCores is the yardstick of `poscli load`: the
// rate at which crypto/ed25519 checks transfer signatures one at a time on
// every core (verify/s). A node committing faster than this checks
// signatures faster than one at a time ever could.
func BenchmarkEd25519VerifyAllCores(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	tx := chain.Transaction{Type: chain.TxTransfer, ChainID: "posd-devnet", To: "00112233445566778899aabbccddeeff00112233", Amount: 1, Nonce: 1}
	tx.Sign(priv)
	pub, msg := priv.Public().(ed25519.PublicKey), tx.SigningBytes()
	sig := ed25519.Sign(priv, msg)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Error("verify failed")
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verify/s")
}
