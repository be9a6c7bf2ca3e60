package daemon

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/tune"
	"github.com/poslab/posd/keystore"
)

// benchSenders makes n funded keys and a node whose genesis holds them.
func benchNode(b *testing.B, n int) (*Node, []*keystore.Key) {
	keys := make([]*keystore.Key, n)
	var allocs []chain.Allocation
	for i := range keys {
		keys[i], _ = keystore.Generate()
		allocs = append(allocs, chain.Allocation{Address: keys[i].Address(), Balance: 1 << 50})
	}
	node := startTestNode(b, func(c *Config) {
		c.Genesis.Allocations = allocs
		c.BlockInterval = 10 * time.Millisecond
		c.PoolLimit = 1 << 20
	})
	return node, keys
}

// transfers signs count transfers spread over the senders, nonces from next[sender].
func transfers(chainID string, keys []*keystore.Key, next []uint64, count int) []chain.Transaction {
	txs := make([]chain.Transaction, count)
	for i := range txs {
		s := i % len(keys)
		next[s]++
		txs[i] = chain.Transaction{Type: chain.TxTransfer, ChainID: chainID, To: keys[(s+1)%len(keys)].Address(), Amount: 1, Fee: 0, Nonce: next[s]}
		keys[s].SignTx(&txs[i])
	}
	return txs
}

// BenchmarkImportBlock1000 imports a block of 1000 transfers the node has
// never seen: every signature verified, state applied, bbolt committed (fsync).
func BenchmarkImportBlock1000(b *testing.B) {
	node, keys := benchNode(b, 100)
	next := make([]uint64, len(keys))
	blocks := make([]*chain.Block, 0, b.N)
	parent := node.API().Head().Header
	for i := 0; i < b.N; i++ {
		blk := chain.NewBlock(node.g, &parent, 0, parent.Timestamp+1, transfers(node.g.ChainID, keys, next, 1000))
		node.key.SignHeader(&blk.Header)
		blocks = append(blocks, blk)
		parent = blk.Header
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := node.chain.ProcessBlock(blocks[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/block")
}

// BenchmarkSingleNodeThroughput sends pre-signed transfers in batches of
// 1000 over HTTP from two clients and waits until the node has committed
// all of them. In the same run it measures the bare ed25519 verify rate on
// all cores, the ceiling a node that verifies every signature cannot beat.
func BenchmarkSingleNodeThroughput(b *testing.B) {
	b.Cleanup(tune.Runtime()) // as posd runs
	const perIter = 20000
	node, keys := benchNode(b, 200)
	next := make([]uint64, len(keys))
	verifyRate := parallelVerifyRate(20000)
	var committed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		txs := transfers(node.g.ChainID, keys, next, perIter)
		startHeight := node.chain.Stats().TxsCommitted
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		batches := make(chan []chain.Transaction)
		for c := 0; c < 2; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for batch := range batches {
					postBatch(b, node.APIURL(), batch)
				}
			}()
		}
		for j := 0; j < len(txs); j += 1000 {
			batches <- txs[j:min(j+1000, len(txs))]
		}
		close(batches)
		wg.Wait()
		for node.chain.Stats().TxsCommitted-startHeight < perIter {
			time.Sleep(time.Millisecond)
		}
		committed += time.Since(start)
	}
	tps := float64(perIter*b.N) / committed.Seconds()
	b.ReportMetric(tps, "committed_tx/s")
	b.ReportMetric(verifyRate, "verify/s")
	b.ReportMetric(tps/verifyRate, "ratio")
}

func postBatch(b *testing.B, url string, txs []chain.Transaction) {
	data, _ := json.Marshal(txs)
	resp, err := http.Post(url+"/v1/txs", "application/json", bytes.NewReader(data))
	if err != nil {
		b.Error(err)
		return
	}
	defer resp.Body.Close()
	var results []struct {
		Error *struct{ Code string } `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&results)
	for _, r := range results {
		if r.Error != nil {
			b.Errorf("rejected: %s", r.Error.Code)
			return
		}
	}
}

// parallelVerifyRate is ed25519 verifications per second on all cores.
func parallelVerifyRate(n int) float64 {
	k, _ := keystore.Generate()
	msg := []byte("posd benchmark message of transaction size, more or less")
	sig := ed25519.Sign(k.PrivateKey(), msg)
	workers := runtime.GOMAXPROCS(0)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/workers; i++ {
				if !ed25519.Verify(k.PublicKey(), msg, sig) {
					panic("verify failed")
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}
