// Command orphanflood gossips blocks on random parents to a posd node on
// loopback, each carrying -txs validly signed transactions (cycled from
// -pool of them, more than the node's signature cache holds, so it never
// helps), signed by a key with no stake; it reports the node's CPU over the run, and
// whether the node still counts this sender as a peer at the end
// (docs/RELIABILITY.md, "orphan blocks"). -rate 0 is the control run:
// connected, sending nothing.
//
//	go run ./daemon/p2p/testdata/orphanflood -peer /ip4/127.0.0.1/tcp/15102/p2p/12D3... \
//	    -genesis /tmp/home/genesis.json -pid PID -for 30s
//
// Loopback only; bounded by -for (at most 5 minutes).
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/p2p"
	"github.com/poslab/posd/keystore"
)

// idle is a handler that holds the genesis and takes nothing.
type idle struct{ genesis chain.Hash }

func (h idle) GenesisHash() chain.Hash                                  { return h.genesis }
func (h idle) Head() (uint64, chain.Hash)                               { return 0, h.genesis }
func (idle) HandleTxs([]chain.Transaction) ([]chain.Transaction, error) { return nil, p2p.ErrIgnore }
func (idle) HandleBlock(*chain.Block) error                             { return p2p.ErrIgnore }
func (idle) Blocks(uint64, int) ([]*chain.Block, error)                 { return nil, nil }

func main() {
	peerAddr := flag.String("peer", "", "the node's multiaddr (/ip4/127.0.0.1/tcp/PORT/p2p/ID)")
	genesisFile := flag.String("genesis", "", "the node's genesis.json")
	pid := flag.Int("pid", 0, "the node's process id (CPU read from /proc)")
	rate := flag.Float64("rate", 10, "blocks per second (0: control run)")
	ntx := flag.Int("txs", 10000, "transactions per block")
	pool := flag.Int("pool", 300000, "distinct signed transactions to cycle through")
	dur := flag.Duration("for", 30*time.Second, "how long to send")
	flag.Parse()
	if !strings.HasPrefix(*peerAddr, "/ip4/127.") || *dur > 5*time.Minute {
		fmt.Fprintln(os.Stderr, "orphanflood: loopback only, at most 5 minutes")
		os.Exit(2)
	}
	data, err := os.ReadFile(*genesisFile)
	if err != nil {
		fail(err)
	}
	g, err := chain.ParseGenesis(data)
	if err != nil {
		fail(err)
	}
	var blocks []*chain.Block
	forger, _ := keystore.Generate()
	if *rate > 0 {
		blocks = makeBlocks(g, *ntx, max(*pool / *ntx, 1))
	}
	node, err := p2p.New(context.Background(), p2p.Config{ListenHost: "127.0.0.1", ChainID: g.ChainID, Peers: []string{*peerAddr},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, idle{g.Hash()})
	if err != nil {
		fail(err)
	}
	defer node.Close()
	for start := time.Now(); len(node.Peers()) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 20*time.Second {
			fail(fmt.Errorf("no handshake with %s", *peerAddr))
		}
	}
	time.Sleep(2 * time.Second) // the block topic's subscriptions
	cpu0, t0 := cpuTime(*pid), time.Now()
	sent, lost := 0, time.Duration(0)
	for end := t0.Add(*dur); time.Now().Before(end); {
		if *rate > 0 {
			if len(node.Peers()) > 0 {
				b := *blocks[sent%len(blocks)]
				b.Height = 1_000_000 + uint64(sent) // another message each time
				binary.BigEndian.PutUint64(b.PrevHash[:], uint64(sent)+1)
				forger.SignHeader(&b.Header) // a valid header signature, by a key with no stake
				node.PublishBlock(&b)
				sent++
			} else if lost == 0 {
				lost = time.Since(t0)
			}
			time.Sleep(time.Duration(float64(time.Second) / *rate))
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	elapsed := time.Since(t0)
	cpu := cpuTime(*pid) - cpu0
	fmt.Printf("%d blocks of %d transactions on random parents in %s\n", sent, *ntx, elapsed.Round(time.Millisecond))
	fmt.Printf("node CPU %.2f cores (%.1f s over %.1f s)\n", cpu.Seconds()/elapsed.Seconds(), cpu.Seconds(), elapsed.Seconds())
	if lost > 0 {
		fmt.Printf("disconnected by the node after %s\n", lost.Round(time.Millisecond))
	} else {
		fmt.Printf("still connected at the end (%d peers)\n", len(node.Peers()))
	}
}

// makeBlocks makes count blocks of ntx distinct signed transactions;
// heights, parents and header signatures are set per send.
func makeBlocks(g *chain.Genesis, ntx, count int) []*chain.Block {
	keys := make([]*keystore.Key, 100)
	for i := range keys {
		keys[i], _ = keystore.Generate()
	}
	txs := make([]chain.Transaction, count*ntx)
	for i := range txs {
		txs[i] = chain.Transaction{Type: chain.TxTransfer, ChainID: g.ChainID, To: keys[0].Address(), Amount: 1, Fee: 1, Nonce: uint64(i/100 + 1)}
		keys[i%100].SignTx(&txs[i])
	}
	var out []*chain.Block
	for i := range count {
		parent := chain.Header{Height: 999_999, Timestamp: time.Now().UnixMilli() - 10_000}
		out = append(out, chain.NewBlock(g, &parent, 0, time.Now().UnixMilli(), txs[i*ntx:(i+1)*ntx]))
	}
	return out
}

// cpuTime is the user+system CPU time of pid.
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "orphanflood:", err)
	os.Exit(1)
}
