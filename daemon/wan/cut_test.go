package wan

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon"
	"github.com/poslab/posd/internal/testutil"
)

// startCutNet starts n nodes in one region with 20 ms links and no jitter
// or loss, funds accs in the genesis and waits until every node has
// handshaken with every other.
func startCutNet(t *testing.T, ctx context.Context, n int, allocs []chain.Allocation) *Net {
	t.Helper()
	gp := daemon.DefaultGenesisParams()
	gp.ChainID = "posd-wan-cut"
	gp.Allocations = allocs
	w, err := Start(ctx, Config{
		Devnet:   daemon.DevnetConfig{Home: t.TempDir(), Nodes: n, Genesis: gp},
		Topology: Topology{Regions: 1, Intra: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	if err := waitConnected(ctx, w.Nodes(), time.Minute); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestCutStaleConn: a stream opened across a cut on a connection from
// before it, which mocknet closed at the cut but still opens streams on,
// must not reach the other node's handler (it is reset there); before the
// cut and after the heal the same exchange goes through.
func TestCutStaleConn(t *testing.T) {
	t.Parallel() // with each other only, after the scenarios
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := startCutNet(t, ctx, 2, nil)
	for name, err := range map[string]error{
		"Partition node 2": w.Partition([]int{0}, []int{2}),
		"Offline node -1":  w.Offline(-1),
		"Online node 2":    w.Online(2),
	} {
		if err == nil {
			t.Errorf("%s of 2 nodes: accepted", name)
		}
	}
	const proto = "/posd-test/cut/1"
	got := make(chan string, 4)
	w.host(1).SetStreamHandler(proto, func(s network.Stream) {
		b, err := io.ReadAll(s)
		if err != nil {
			s.Reset()
			return
		}
		got <- string(b)
		s.Close()
	})
	ids := w.peers()
	conns := w.host(0).Network().ConnsToPeer(ids[1])
	if len(conns) == 0 {
		t.Fatal("node 0 has no connection to node 1")
	}
	stale := conns[0]
	// exchange writes b on s, closes its write side and reads what comes
	// back (the handler's protocol negotiation) until the handler closes
	// the stream (nil) or it is reset.
	exchange := func(s network.Stream, b []byte) error {
		done := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, s)
			done <- err
		}()
		_, err := s.Write(b)
		if err == nil {
			err = s.CloseWrite()
		}
		if err != nil {
			s.Reset()
			return err
		}
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			s.Reset()
			return errors.New("no answer in 30 s")
		}
	}
	// send opens a stream on c itself, as a holder of the connection can,
	// and sends msg with the multistream-select header that the host's
	// handler expects.
	send := func(c network.Conn, msg string) error {
		s, err := c.NewStream(ctx)
		if err != nil {
			return err
		}
		var b []byte
		for _, line := range []string{"/multistream/1.0.0\n", proto + "\n"} {
			b = binary.AppendUvarint(b, uint64(len(line)))
			b = append(b, line...)
		}
		return exchange(s, append(b, msg...))
	}
	receivedNow := func() (string, bool) {
		select {
		case m := <-got:
			return m, true
		default:
			return "", false
		}
	}

	if err := send(stale, "before"); err != nil {
		t.Fatalf("before the cut: %v", err)
	}
	if m, ok := receivedNow(); !ok || m != "before" {
		t.Fatalf("before the cut: node 1 received %q (%v), want \"before\"", m, ok)
	}

	if err := w.Partition([]int{0}, []int{1}); err != nil {
		t.Fatal(err)
	}
	if !stale.IsClosed() {
		t.Error("the connection from before the cut is not closed")
	}
	// Node 1's end closes a moment later; once it has, a stream opened on
	// it is reset by nobody.
	testutil.WaitFor(t, 10*time.Second, "node 1 to drop its connection to node 0", func() bool {
		return len(w.host(1).Network().ConnsToPeer(ids[0])) == 0
	})
	err := send(stale, "across")
	if m, ok := receivedNow(); ok {
		t.Fatalf("node 1 received %q across the cut, on a connection closed by it", m)
	}
	if err == nil {
		t.Error("a stream across the cut ended normally, want a reset")
	}
	if _, err := w.host(0).NewStream(ctx, ids[1], proto); err == nil {
		t.Error("node 0 opened a stream to node 1 across the cut")
	}

	if err := w.Heal(); err != nil {
		t.Fatal(err)
	}
	// The nodes re-dial each other on their own after the heal.
	if err := waitConnected(ctx, w.Nodes(), time.Minute); err != nil {
		t.Fatal(err)
	}
	s, err := w.host(0).NewStream(ctx, ids[1], proto)
	if err != nil {
		t.Fatalf("after the heal: %v", err)
	}
	if err := exchange(s, []byte("healed")); err != nil {
		t.Fatalf("after the heal: %v", err)
	}
	if m, ok := receivedNow(); !ok || m != "healed" {
		t.Errorf("after the heal: node 1 received %q (%v), want \"healed\"", m, ok)
	}
}

// TestCutHolds splits four nodes 2|2 while both sides forge, vote and take
// a transfer each: no block, vote or transfer made on one side may reach
// the other until the heal, and neither half (half the stake) finalizes
// past the cut; after the heal every node agrees on one chain holding
// both transfers.
func TestCutHolds(t *testing.T) {
	t.Parallel() // with each other only, after the scenarios
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	accs, allocs := NewLoadAccounts(2, 1<<40)
	w := startCutNet(t, ctx, 4, allocs)
	nodes := w.Nodes()
	// transfer sends 1 coin from accs[from] to the other account through
	// node i.
	transfer := func(i, from int) chain.Hash {
		t.Helper()
		n := nodes[i]
		gen := n.API().Genesis()
		a := accs[from]
		tx := chain.Transaction{Type: chain.TxTransfer, ChainID: gen.ChainID, From: a.Address(), To: accs[1-from].Address(),
			Amount: 1, Fee: gen.MinFee, Nonce: *n.API().Account(a.Address()).PendingNonce + 1}
		tx.Sign(a.Key)
		id, err := n.API().SubmitTx(tx)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		return id
	}
	// The chain moves only with transactions (and the beats that finalize
	// them): one transfer, final everywhere, and the chain rests.
	first := transfer(0, 0)
	testutil.WaitFor(t, time.Minute, "a first transfer to be final on every node", func() bool {
		for _, n := range nodes {
			if info, err := n.API().TxInfo(first); err != nil || !info.Final {
				return false
			}
		}
		return true
	})

	groups := [][]int{{0, 1}, {2, 3}}
	sideOf := map[chain.Address]int{}
	for g, side := range groups {
		for _, i := range side {
			sideOf[nodes[i].Address()] = g
		}
	}
	cutHead := slices.Max(heights(nodes))
	cutAt := time.Now()
	if err := w.Partition(groups...); err != nil {
		t.Fatal(err)
	}
	// Made more than 1 s after the cut (clock and forging slack): nothing
	// of the other side's may be on a node's main chain.
	since := cutAt.Add(time.Second).UnixMilli()

	// One transfer per side, each to a node of its side: each side forges
	// it, then beats on (nothing becomes final with half the stake).
	var txIDs [2]chain.Hash
	for g := range groups {
		txIDs[g] = transfer(groups[g][0], g)
	}

	// postCut lists node i's main-chain blocks made after since, newest first.
	postCut := func(i int) []*chain.Block {
		var out []*chain.Block
		for h := nodes[i].API().Height(); h > 0; h-- {
			b, err := nodes[i].API().BlockByHeight(h)
			if err != nil || b.Timestamp < since {
				break
			}
			out = append(out, b)
		}
		return out
	}
	// Both sides forge at least twice after the cut, with their own
	// transfer in: a split that both sides lived through.
	testutil.WaitFor(t, 90*time.Second, "both sides to forge twice with their transfer after the cut", func() bool {
		for g, side := range groups {
			for _, i := range side {
				own := 0
				for _, b := range postCut(i) {
					if sideOf[b.Forger] == g {
						own++
					}
				}
				info, err := nodes[i].API().TxInfo(txIDs[g])
				if own < 2 || err != nil || info.Height == nil {
					return false
				}
			}
		}
		return true
	})

	if leak := crossForged(nodes, groups, cutAt.Add(time.Second)); leak != "" {
		t.Errorf("a block crossed the cut: %s", leak)
	}
	ownVotes := 0
	for g, side := range groups {
		for _, i := range side {
			for _, b := range postCut(i) {
				for _, v := range b.Votes {
					vg, ok := sideOf[v.Voter()]
					switch {
					case !ok || v.Target.Height <= cutHead:
					case vg != g:
						t.Errorf("node %d: block %d holds a vote of node of the other side for height %d, above the highest head %d at the cut",
							i, b.Height, v.Target.Height, cutHead)
					default:
						ownVotes++
					}
				}
			}
			if _, err := nodes[i].API().TxInfo(txIDs[1-g]); err == nil {
				t.Errorf("node %d knows the transfer sent to the other side", i)
			}
			if f := FinalHeights(nodes)[i]; f > cutHead {
				t.Errorf("node %d (half the stake) final at %d, above the highest head %d at the cut", i, f, cutHead)
			}
		}
	}
	if ownVotes == 0 {
		t.Error("no vote made after the cut on either side's chain: the vote check saw nothing")
	}
	t.Logf("split: head %d at the cut, heads %v, final %v, %d own-side votes after it, %d refused across the cut",
		cutHead, heights(nodes), FinalHeights(nodes), ownVotes, w.Refused())

	// The halves' records may have finalized differently before the cut
	// took hold (final [1 1 2 2]): then the half with the higher
	// justified checkpoint may be on the shorter chain, and the other
	// half must fetch that shorter branch to switch to it (docs/NETWORK.md
	// finding 5: before it did, finality could stall for good).
	finals := FinalHeights(nodes)
	if err := w.Heal(); err != nil {
		t.Fatal(err)
	}
	t.Logf("healed: heads %v, final %v", heights(nodes), finals)
	// One chain again, finalizing with every node's votes: both transfers
	// final on every node.
	testutil.WaitFor(t, 90*time.Second, "both transfers to be final on every node after the heal", func() bool {
		for _, n := range nodes {
			for _, id := range txIDs {
				if info, err := n.API().TxInfo(id); err != nil || !info.Final {
					return false
				}
			}
		}
		return true
	})
	if err := CheckOneChain(nodes); err != nil {
		t.Error(err)
	}
	if err := CheckCoins(nodes); err != nil {
		t.Error(err)
	}
}
