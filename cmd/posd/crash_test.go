package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/keystore"
)

// TestCrashRecovery kills posd with SIGKILL at random instants while
// transfers stream in, 20 times. After every restart the node must serve a
// chain whose blocks link up, whose state equals a replay of those blocks
// from genesis, whose earlier blocks are unchanged, and whose height never
// went backwards.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	home := t.TempDir()
	port := freePort(t)
	p := startPosd(t, home, port, "--genesis", "--chain-id", "crash", "--heartbeat=false") // it compares heights read at two moments

	senders := make([]*keystore.Key, 4)
	for i := range senders {
		senders[i], _ = keystore.Generate()
	}
	sink, _ := keystore.Generate()
	seen := map[uint64]chain.Hash{} // height → hash observed before a crash
	var maxHeight uint64
	rng := rand.New(rand.NewPCG(1, 2))

	for round := 0; round < 20; round++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, k := range senders {
			wg.Add(1)
			go func(k *keystore.Key) {
				defer wg.Done()
				streamTransfers(p, k, sink.Address(), stop)
			}(k)
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		st := p.status()
		maxHeight = max(maxHeight, st.Height)
		seen[st.Height] = st.HeadHash
		p.cmd.Process.Kill() // SIGKILL: no chance to clean up
		close(stop)
		wg.Wait()
		<-p.done

		p = startPosd(t, home, port)
		st = p.status()
		if st.Height < maxHeight {
			t.Fatalf("round %d: height went back from %d to %d", round, maxHeight, st.Height)
		}
		verifyChain(t, p, seen)
	}
	if maxHeight < 20 {
		t.Fatalf("only %d blocks in 20 rounds: the load did not reach the node", maxHeight)
	}
	t.Logf("20 kills survived, final height %d", maxHeight)
}

// streamTransfers funds k and sends it transfers until stop closes. Errors
// are expected (the node dies under it) and ignored.
func streamTransfers(p *proc, k *keystore.Key, to chain.Address, stop <-chan struct{}) {
	client := &http.Client{Timeout: 2 * time.Second}
	var status rpc.Status
	if getJSON(client, p.url+"/v1/status", &status) != nil {
		return
	}
	var acc rpc.Account
	if getJSON(client, p.url+"/v1/accounts/"+string(k.Address()), &acc) != nil {
		return
	}
	nonce := *acc.PendingNonce
	for {
		select {
		case <-stop:
			return
		default:
		}
		nonce++
		tx := chain.Transaction{Type: chain.TxTransfer, ChainID: status.ChainID, To: to, Amount: 1, Nonce: nonce}
		if acc.Balance < 100 {
			tx = chain.Transaction{Type: chain.TxExchange, ChainID: status.ChainID, To: k.Address(), Amount: 10000, Nonce: nonce}
			acc.Balance = 10000
		}
		acc.Balance--
		k.SignTx(&tx)
		if postJSON(client, p.url+"/v1/txs", tx) != nil {
			return
		}
	}
}

// verifyChain checks the served chain block by block and replays it.
func verifyChain(t *testing.T, p *proc, seen map[uint64]chain.Hash) {
	t.Helper()
	_, gdata := p.call("GET", "/v1/genesis", nil, "", nil)
	g, err := chain.ParseGenesis(gdata)
	if err != nil {
		t.Fatalf("genesis: %v", err)
	}
	state := g.State()
	parent := g.Block().Header
	height := p.status().Height
	// A page ends at 1000 blocks or at the API's page bytes, whichever
	// comes first: the next page starts after the last block served.
	for from := uint64(0); from <= height; from = parent.Height + 1 {
		var blocks []chain.Block
		p.call("GET", fmt.Sprintf("/v1/blocks?from=%d&limit=1000", from), nil, "", &blocks)
		if len(blocks) == 0 {
			break
		}
		for i := range blocks {
			b := &blocks[i]
			if b.Height == 0 {
				if b.Hash() != parent.Hash() {
					t.Fatalf("block 0 is not the genesis block")
				}
				continue
			}
			if b.Height != parent.Height+1 || b.PrevHash != parent.Hash() {
				t.Fatalf("block %d does not link to its parent", b.Height)
			}
			if want, ok := seen[b.Height]; ok && want != b.Hash() {
				t.Fatalf("block %d changed across a crash", b.Height)
			}
			if _, err := state.Apply(b, g); err != nil {
				t.Fatalf("replaying block %d: %v", b.Height, err)
			}
			parent = b.Header
		}
	}
	if parent.Height != height {
		t.Fatalf("served %d blocks, status says height %d", parent.Height, height)
	}
	var accounts []rpc.Account
	p.call("GET", "/v1/accounts", nil, "", &accounts)
	replayed := state.Accounts()
	if len(accounts) != len(replayed) {
		t.Fatalf("node has %d accounts, replay %d", len(accounts), len(replayed))
	}
	for i, a := range accounts {
		r := replayed[i]
		if a.Address != r.Address || a.Balance != r.Balance || a.Stake != r.Stake || a.Nonce != r.Nonce {
			t.Fatalf("account %s: node %+v, replay %+v", a.Address.Short(), a, r)
		}
	}
}
