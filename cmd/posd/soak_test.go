package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/keystore"
)

// soakDuration is how long TestCrashSoak kills and restarts nodes:
// POSD_SOAK_DURATION (a Go duration), else a minute.
func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv("POSD_SOAK_DURATION")
	if v == "" {
		return time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("POSD_SOAK_DURATION=%q: want a positive duration such as 90s", v)
	}
	return d
}

// postAccepted posts body as JSON and reports whether the node took it (2xx).
func postAccepted(c *http.Client, url string, body any) bool {
	data, _ := json.Marshal(body)
	resp, err := c.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode/100 == 2
}

// soakNode is one of the soak's posd processes: its fixed home, key and
// ports survive restarts; proc is the current process (nil while down).
type soakNode struct {
	i        int
	home     string
	key      *keystore.Key
	api, p2p int
	addr     string // libp2p multiaddr with /p2p/<id>
	args     []string

	mu   sync.Mutex
	proc *proc
}

func (n *soakNode) url() string { return fmt.Sprintf("http://127.0.0.1:%d", n.api) }

func (n *soakNode) current() *proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

func (n *soakNode) start(t *testing.T) {
	p := runProc(t, exec.Command(posdBin, n.args...), n.home, n.url())
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
}

// crash kills the process with SIGKILL: no chance to clean up.
func (n *soakNode) crash() {
	n.mu.Lock()
	p := n.proc
	n.proc = nil
	n.mu.Unlock()
	if p != nil {
		p.cmd.Process.Kill()
		<-p.done
	}
}

// TestCrashSoak runs three posd processes, each staking, under a stream of
// transfers, and SIGKILLs a random one every few seconds, restarting it at
// once, for POSD_SOAK_DURATION (a minute by default). At the end every
// transaction a node reported committed is committed on every node, the
// heads agree, every node's state is the replay of its blocks, and no coin
// was made or lost.
func TestCrashSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak skipped in -short mode")
	}
	duration := soakDuration(t)
	const nodeCount, users = 3, 6
	const userBalance = 1_000_000

	g := chain.DefaultGenesis()
	g.ChainID = "soak"
	g.Timestamp = time.Now().UnixMilli()
	g.SlotMs = 1000
	nodes := make([]*soakNode, nodeCount)
	for i := range nodes {
		k, err := keystore.Generate()
		if err != nil {
			t.Fatal(err)
		}
		home := t.TempDir()
		if err := keystore.Save(filepath.Join(home, "node_key.pem"), k, nil); err != nil {
			t.Fatal(err)
		}
		pk, err := crypto.UnmarshalEd25519PrivateKey(k.PrivateKey())
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(pk)
		if err != nil {
			t.Fatal(err)
		}
		n := &soakNode{i: i, home: home, key: k, api: freePort(t), p2p: freePort(t)}
		n.addr = fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", n.p2p, id)
		nodes[i] = n
		g.Allocations = append(g.Allocations, chain.Allocation{Address: k.Address(), Balance: 100, Stake: 10})
	}
	userKeys := make([]*keystore.Key, users)
	for i := range userKeys {
		userKeys[i], _ = keystore.Generate()
		g.Allocations = append(g.Allocations, chain.Allocation{Address: userKeys[i].Address(), Balance: userBalance})
	}
	var supply uint64
	for _, a := range g.Allocations {
		supply += a.Balance + a.Stake
	}
	gdata, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	gfile := filepath.Join(t.TempDir(), "genesis.json")
	if err := os.WriteFile(gfile, gdata, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		var peers []string
		for _, o := range nodes {
			if o != n {
				peers = append(peers, o.addr)
			}
		}
		n.args = []string{"start", "--home", n.home, "--api-port", fmt.Sprint(n.api), "--p2p-port", fmt.Sprint(n.p2p),
			"--mdns=false", "--genesis-file", gfile, "--peers", strings.Join(peers, ","), "--block-interval", "200ms"}
		n.start(t)
	}
	waitFor(t, 60*time.Second, "every node to see both others", func() bool {
		for _, n := range nodes {
			if n.current().status().Peers < nodeCount-1 {
				return false
			}
		}
		return true
	})

	// Load: each user sends one transfer at a time to a random live node
	// and waits for that node to report it committed.
	var (
		committedMu sync.Mutex
		committed   = map[chain.Hash]bool{}
		submitted   atomic.Int64
	)
	sink, _ := keystore.Generate()
	stop := make(chan struct{})
	var load sync.WaitGroup
	for u, k := range userKeys {
		load.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(u), 7))
			hc := &http.Client{Timeout: 3 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				url := nodes[rng.IntN(nodeCount)].url()
				var acc rpc.Account
				if getJSON(hc, url+"/v1/accounts/"+string(k.Address()), &acc) != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				tx := chain.Transaction{Type: chain.TxTransfer, ChainID: g.ChainID, To: sink.Address(),
					Amount: 1 + rng.Uint64N(100), Fee: rng.Uint64N(3), Nonce: acc.Nonce + 1}
				k.SignTx(&tx)
				if !postAccepted(hc, url+"/v1/txs", tx) {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				submitted.Add(1)
				id := tx.ID()
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
					var info rpc.TxInfo
					if err := getJSON(hc, url+"/v1/txs/"+id.String(), &info); err != nil && !strings.Contains(err.Error(), "404") {
						break // the node went down: ask another
					}
					// Committed and built upon: a block at the head can
					// still lose a fork to a rank-0 block its forger had
					// made just before it was killed (and then the
					// transaction returns to pools that the next kill may
					// empty). Three confirmations are what a careful
					// client waits for here.
					if info.Status == rpc.TxCommitted && info.Confirmations != nil && *info.Confirmations >= soakConfirmations {
						committedMu.Lock()
						committed[id] = true
						committedMu.Unlock()
						break
					}
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		})
	}

	// Chaos: a random node killed and restarted every 2-4 s.
	rng := rand.New(rand.NewPCG(42, 42))
	kills := 0
	for end := time.Now().Add(duration); time.Now().Before(end); {
		time.Sleep(time.Duration(2000+rng.IntN(2000)) * time.Millisecond)
		n := nodes[rng.IntN(nodeCount)]
		n.crash()
		kills++
		n.start(t)
	}
	close(stop)
	load.Wait()

	// Let the network settle: pools drained, every node at one head, and
	// that head unchanged for a few seconds (no block in flight).
	var head chain.Hash
	var since time.Time
	waitFor(t, 180*time.Second, "the nodes to settle on one head", func() bool {
		st := nodes[0].current().status()
		for _, n := range nodes {
			s := n.current().status()
			if s.HeadHash != st.HeadHash || s.Pending != 0 {
				since = time.Time{}
				return false
			}
		}
		if st.HeadHash != head || since.IsZero() {
			head, since = st.HeadHash, time.Now()
			return false
		}
		return time.Since(since) > 3*time.Second
	})
	committedMu.Lock()
	defer committedMu.Unlock()
	t.Logf("%s: %d kills, %d transfers submitted, %d reported committed, head %d %s",
		duration, kills, submitted.Load(), len(committed), nodes[0].current().status().Height, head)
	if len(committed) < 10 {
		t.Fatalf("only %d transactions committed: the load did not get through", len(committed))
	}
	for _, n := range nodes {
		p := n.current()
		for id := range committed {
			var info rpc.TxInfo
			if code, _ := p.call("GET", "/v1/txs/"+id.String(), nil, "", &info); code != http.StatusOK || info.Status != rpc.TxCommitted {
				t.Fatalf("node %d: transaction %s reported committed is %q (HTTP %d)", n.i, id, info.Status, code)
			}
		}
		verifyChain(t, p, map[uint64]chain.Hash{})
		var accounts []rpc.Account
		p.call("GET", "/v1/accounts", nil, "", &accounts)
		var total uint64
		for _, a := range accounts {
			total += a.Balance + a.Stake
		}
		if total != supply {
			t.Fatalf("node %d: %d coins, genesis made %d", n.i, total, supply)
		}
	}
}

// soakConfirmations is how deep a transaction must be before the soak's
// clients count it as committed.
const soakConfirmations = 3
