package main

import (
	"net/http"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/keystore"
)

// TestPoolJamA4 replays the nonce-gap jam against the real posd, at a
// tenth of the scale and the same shape: keys mint coins (EXCHANGE is
// open), then each submits nonces 3..66, nonce 2 skipped, as many
// never-runnable transactions as the pool holds. Before, the node took
// them all and answered everyone pool_full for good. Now an honest
// transaction is taken and forged.
func TestPoolJamA4(t *testing.T) {
	if testing.Short() {
		t.Skip("signs and submits thousands of transactions")
	}
	const keys = 100 // 1,563 in the attack
	const limit = keys * 64
	p := startPosd(t, t.TempDir(), freePort(t), "--genesis", "--chain-id", "jam", "--pool-limit", "6400", "--block-size", "1000", "--block-interval", "100ms")
	jammers := make([]*keystore.Key, keys)
	var mint []chain.Transaction
	for i := range jammers {
		jammers[i], _ = keystore.Generate()
		tx := chain.Transaction{Type: chain.TxExchange, ChainID: "jam", To: jammers[i].Address(), Amount: 1000, Nonce: 1}
		jammers[i].SignTx(&tx)
		mint = append(mint, tx)
	}
	if code, body := p.call("POST", "/v1/txs", mint, "", nil); code != http.StatusOK {
		t.Fatalf("minting: %d %s", code, body)
	}
	for _, tx := range mint {
		p.waitCommitted(tx.ID())
	}

	queueFull := 0
	for i := 0; i < keys; i += 10 {
		var batch []chain.Transaction
		for _, k := range jammers[i : i+10] {
			for n := uint64(3); n <= 66; n++ {
				tx := chain.Transaction{Type: chain.TxTransfer, ChainID: "jam", To: k.Address(), Amount: 1, Nonce: n}
				k.SignTx(&tx)
				batch = append(batch, tx)
			}
		}
		var res []rpc.SubmitResult
		if code, body := p.call("POST", "/v1/txs", batch, "", &res); code != http.StatusOK {
			t.Fatalf("jam batch: %d %.300s", code, body)
		}
		for _, r := range res {
			if r.Error != nil && r.Error.Code == "queue_full" {
				queueFull++
			}
		}
	}
	st := p.status()
	t.Logf("jam: %d gapped transactions sent, %d refused queue_full, %d pooled", keys*64, queueFull, st.Pending)
	if queueFull == 0 || st.Pending > limit/4 {
		t.Fatalf("the jam filled the pool: %d pooled, %d refused queue_full", st.Pending, queueFull)
	}

	// An honest newcomer, fee 0 like the jam, gets in and is forged.
	honest, _ := keystore.Generate()
	tx := p.sign(honest, chain.Transaction{Type: chain.TxExchange, To: honest.Address(), Amount: 5})
	p.submit(tx)
	info := p.waitCommitted(tx.ID())
	t.Logf("honest transaction committed at height %d", *info.Height)
}
