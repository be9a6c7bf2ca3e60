package wan

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon"
	"github.com/poslab/posd/internal/testutil"
)

// TestPeerRTT: the round-trip time each node measures to its peers (GET
// /v1/peers: rtt_ms, rtt_last_ms) is the emulated link's. Four nodes in
// three regions give links of 20 ms (nodes 0 and 3), 80, 165 and 250 ms; no
// loss, so no sample is held back by a retransmission. A measured figure
// must be at least the link's RTT (less a margin for timer rounding) and
// within twice the link's one-way delay above it, plus the jitter of the
// two writes (ping, echo) and some scheduling slack. Then one link is
// slowed to 400 ms: the next ping must see it.
func TestPeerRTT(t *testing.T) {
	topo := DefaultTopology()
	topo.Loss, topo.Jitter = 0, 5*time.Millisecond
	const nodes = 4
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w, err := Start(ctx, Config{
		Devnet:   daemon.DevnetConfig{Home: t.TempDir(), Nodes: nodes, Genesis: daemon.DefaultGenesisParams()},
		Topology: topo,
		Seed:     1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// peersOf is node i's peers by node number, as the API answers them.
	peersOf := func(i int) map[int]rpc.Peer {
		out := map[int]rpc.Peer{}
		for _, p := range w.Nodes()[i].API().Peers() {
			w.mu.Lock()
			for j, id := range w.ids {
				if id.String() == p.ID {
					out[j] = p
				}
			}
			w.mu.Unlock()
		}
		return out
	}
	testutil.WaitFor(t, time.Minute, "every node to measure every peer", func() bool {
		for i := range nodes {
			ps := peersOf(i)
			if len(ps) != nodes-1 {
				return false
			}
			for _, p := range ps {
				if p.RTTMs <= 0 || p.RTTLastMs <= 0 {
					return false
				}
			}
		}
		return true
	})
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	within := func(got float64, l Link) error {
		lo := 0.9 * ms(l.RTT)
		hi := ms(l.RTT) + 2*ms(l.RTT/2) + 2*ms(l.Jitter) + 20
		if got < lo || got > hi {
			return fmt.Errorf("%.2f ms, want in [%.1f, %.1f] for a %v link", got, lo, hi, l.RTT)
		}
		return nil
	}
	var seen []string
	for i := range nodes {
		for j, p := range peersOf(i) {
			l := w.LinkOf(i, j)
			for what, v := range map[string]float64{"rtt_ms": p.RTTMs, "rtt_last_ms": p.RTTLastMs} {
				if err := within(v, l); err != nil {
					t.Errorf("node %d to %d: %s %v", i, j, what, err)
				}
			}
			seen = append(seen, fmt.Sprintf("%d-%d link %v: %.1f ms", i, j, l.RTT, p.RTTLastMs))
		}
	}
	slices.Sort(seen)
	t.Logf("measured: %v", seen)

	slow := w.LinkOf(0, 1)
	slow.RTT = 400 * time.Millisecond
	if err := w.SetLink(0, 1, slow); err != nil {
		t.Fatal(err)
	}
	// The next round of pings (every 10 s) crosses the slowed link.
	testutil.WaitFor(t, 30*time.Second, "node 0 to see its link to node 1 slowed", func() bool {
		return peersOf(0)[1].RTTLastMs >= 0.9*ms(slow.RTT)
	})
	if err := within(peersOf(0)[1].RTTLastMs, slow); err != nil {
		t.Errorf("node 0 to 1 after the slowdown: rtt_last_ms %v", err)
	}
}
