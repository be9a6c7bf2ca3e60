package main

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/keystore"

	"github.com/poslab/posd/internal/testutil"
)

// TestThreeProcessesFormANetwork runs the README's recipe for nodes in
// separate processes, on free ports (never the default 5001/10001, which a
// user's own node may hold): `posd start --genesis`, then two nodes that
// join it and stake on first start (--fund, --stake). Every node sees every
// transaction; then the genesis node dies and the other two go on forging.
// Homes come from POSD_HOME, not flags.
func TestThreeProcessesFormANetwork(t *testing.T) {
	start := func(args ...string) *proc {
		home := t.TempDir()
		api := freePort(t)
		all := append([]string{"start", "--api-port", fmt.Sprint(api), "--p2p-port", fmt.Sprint(freePort(t)), "--mdns=false"}, args...)
		cmd := exec.Command(posdBin, all...)
		cmd.Env = append(os.Environ(), "POSD_HOME="+home)
		return runProc(t, cmd, home, fmt.Sprintf("http://127.0.0.1:%d", api))
	}
	genesis := start("--genesis")
	n2 := start("--join", genesis.url, "--fund", "100", "--stake", "10")
	n3 := start("--join", genesis.url, "--fund", "100", "--stake", "10")
	nodes := []*proc{genesis, n2, n3}

	waitFor(t, 60*time.Second, "two peers each", func() bool {
		for _, p := range nodes {
			if p.status().Peers < 2 {
				return false
			}
		}
		return true
	})
	waitFor(t, 90*time.Second, "the joined nodes to stake", func() bool {
		var stakes []rpc.Stake
		genesis.call("GET", "/v1/stakes", nil, "", &stakes)
		return len(stakes) == 3
	})
	k, _ := keystore.Generate()
	for i, p := range nodes {
		tx := p.sign(k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 10})
		p.submit(tx)
		p.waitCommitted(tx.ID())
		waitFor(t, 30*time.Second, "every node to see the exchange", func() bool {
			for _, q := range nodes {
				if q.account(k.Address()).Nonce != uint64(i+1) {
					return false
				}
			}
			return true
		})
	}
	head := genesis.status().HeadHash
	for _, p := range nodes {
		if s := p.status(); s.HeadHash != head || s.ChainID != "posd-local" {
			t.Fatalf("node %s: head %s chain %s, want %s", p.url, s.HeadHash, s.ChainID, head)
		}
	}

	// The genesis node dies; the stakers it leaves behind keep forging.
	genesis.kill()
	for _, p := range []*proc{n2, n3, n2} {
		tx := p.sign(k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 1})
		p.submit(tx)
		p.waitCommitted(tx.ID())
	}
	waitFor(t, 30*time.Second, "both survivors to agree", func() bool {
		return n2.account(k.Address()).Nonce == 6 && n3.account(k.Address()).Nonce == 6
	})
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, cond)
}
