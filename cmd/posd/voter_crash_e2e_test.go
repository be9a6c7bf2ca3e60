package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/keystore"
)

// TestVoterSurvivesKillNine: a voting node (real binary) is killed with
// SIGKILL at random instants and restarted on the same home, again and
// again, while two honest nodes go on forging and checking every vote they
// see against the voter's earlier ones. Its votes keep landing in blocks,
// and no node ever holds evidence against it: the voter's last vote is on
// disk before it signs, so no restart makes it sign a slashable pair.
// 20 kills by default (issue 20); POSD_VOTER_KILLS sets another count.
func TestVoterSurvivesKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a node 20 times")
	}
	kills := 20
	if s := os.Getenv("POSD_VOTER_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("POSD_VOTER_KILLS=%q: want a positive count", s)
		}
		kills = n
	}
	start := func(home string, api int, args ...string) *proc {
		all := append([]string{"start", "--api-port", fmt.Sprint(api), "--p2p-port", fmt.Sprint(freePort(t)), "--mdns=false"}, args...)
		cmd := exec.Command(posdBin, all...)
		cmd.Env = append(os.Environ(), "POSD_HOME="+home)
		return runProc(t, cmd, home, fmt.Sprintf("http://127.0.0.1:%d", api))
	}
	genesis := start(t.TempDir(), freePort(t), "--genesis")
	honest := start(t.TempDir(), freePort(t), "--join", genesis.url, "--fund", "100", "--stake", "10")
	victimHome, victimAPI := t.TempDir(), freePort(t)
	victim := start(victimHome, victimAPI, "--join", genesis.url, "--fund", "100", "--stake", "10")
	waitFor(t, 90*time.Second, "the joined nodes to stake", func() bool {
		var stakes []rpc.Stake
		genesis.call("GET", "/v1/stakes", nil, "", &stakes)
		return len(stakes) == 3
	})
	voter := victim.status().Address

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 20))
	for i := range kills {
		// A payment makes blocks due, and blocks make votes.
		k, _ := keystore.Generate()
		genesis.submit(genesis.sign(k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 1}))
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond) // the random instant
		victim.kill()
		if i%5 == 4 {
			t.Logf("%d kills", i+1)
		}
		victim = start(victimHome, victimAPI, "--join", genesis.url)
	}
	// Once more, with nobody killed: the victim's votes must keep counting.
	k, _ := keystore.Generate()
	tx := genesis.sign(k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 1})
	genesis.submit(tx)
	genesis.waitCommitted(tx.ID())

	var head uint64
	waitFor(t, 60*time.Second, "the three nodes to agree on a head", func() bool {
		a, b, c := genesis.status(), honest.status(), victim.status()
		head = a.Height
		return a.HeadHash == b.HeadHash && b.HeadHash == c.HeadHash
	})
	for _, p := range []*proc{genesis, honest, victim} {
		var evs []rpc.Evidence
		if code, body := p.call("GET", "/v1/evidence", nil, "", &evs); code != 200 {
			t.Fatalf("GET /v1/evidence on %s: %d %s", p.url, code, body)
		}
		for _, e := range evs {
			if string(e.Forger) == voter {
				t.Fatalf("%s holds %s evidence against the killed voter at height %d", p.url, e.Kind, e.Height)
			}
		}
	}
	// The check has teeth only if the victim voted between its kills.
	targets := map[uint64]bool{}
	for h := uint64(1); h <= head; h++ {
		var b struct {
			Votes []struct {
				Voter  string           `json:"voter"`
				Target chain.Checkpoint `json:"target"`
			} `json:"votes"`
		}
		if code, body := genesis.call("GET", fmt.Sprintf("/v1/blocks/%d", h), nil, "", &b); code != 200 {
			t.Fatalf("block %d: %d %s", h, code, body)
		}
		for _, v := range b.Votes {
			if v.Voter == voter {
				targets[v.Target.Height] = true
			}
		}
	}
	if len(targets) < kills/2 {
		t.Fatalf("the killed voter's votes are in blocks for %d targets only (head %d, %d kills): it hardly voted", len(targets), head, kills)
	}
	t.Logf("%d kills; the voter's votes in blocks for %d targets up to height %d; no evidence against it", kills, len(targets), head)
}
