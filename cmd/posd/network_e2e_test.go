package main

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/keystore"

	"github.com/poslab/posd/internal/testutil"
)

// TestThreeProcessesFormANetwork runs the README's recipe with real
// processes: `posd start --genesis`, then two `posd start --api-port 500X
// --p2p-port 1000X` with no other flags, which find the genesis node on
// port 5001 by themselves. Homes come from POSD_HOME, not flags.
func TestThreeProcessesFormANetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("uses the fixed default ports 5001-5003 and 10001-10003")
	}
	start := func(args ...string) *proc {
		home := t.TempDir()
		cmd := exec.Command(posdBin, append([]string{"start"}, args...)...)
		cmd.Env = append(os.Environ(), "POSD_HOME="+home)
		return runProc(t, cmd, home, "http://127.0.0.1:"+portOf(args))
	}
	genesis := start("--genesis")
	n2 := start("--api-port", "5002", "--p2p-port", "10002")
	n3 := start("--api-port", "5003", "--p2p-port", "10003")
	nodes := []*proc{genesis, n2, n3}

	waitFor(t, 20*time.Second, "three peers each", func() bool {
		for _, p := range nodes {
			if p.status().Peers < 2 {
				return false
			}
		}
		return true
	})
	k, _ := keystore.Generate()
	for i, p := range nodes {
		tx := p.sign(k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 10})
		p.submit(tx)
		p.waitCommitted(tx.ID())
		waitFor(t, 20*time.Second, "every node to see the transfer", func() bool {
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
}

func portOf(args []string) string {
	for i, a := range args {
		if a == "--api-port" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return "5001"
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, cond)
}
