package wan

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon"
)

// full reports whether the full-size runs were asked for (POSD_WAN_FULL=1);
// CI runs the short ones.
func full() bool { return os.Getenv("POSD_WAN_FULL") == "1" }

func size(short, long int) int {
	if full() {
		return long
	}
	return short
}

func dur(short, long time.Duration) time.Duration {
	if full() {
		return long
	}
	return short
}

// splitFor is how long the full runs' partitions last: 60 s, or
// POSD_WAN_SPLIT (a duration).
func splitFor(t *testing.T) time.Duration {
	v := os.Getenv("POSD_WAN_SPLIT")
	if v == "" {
		return 60 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("POSD_WAN_SPLIT=%q: not a positive duration", v)
	}
	return d
}

func runScenario(t *testing.T, sc Scenario) Result {
	t.Helper()
	if sc.Topology.Regions == 0 {
		sc.Topology = DefaultTopology()
	}
	sc.Settle = dur(30*time.Second, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), sc.Duration+3*time.Minute)
	defer cancel()
	res, err := Run(ctx, t.TempDir(), sc)
	t.Logf("%s: %v", sc.Name, res)
	if err != nil {
		t.Fatalf("%s: %v", sc.Name, err)
	}
	// Every scenario ends with every node online and connected: finality
	// must have caught up with the chain and every transfer sent be final.
	if !res.FinalCaughtUp {
		t.Errorf("%s: finality did not catch up within %v after the load: final heights %v, head at the load's end %d, %d transfers not final",
			sc.Name, sc.Settle, res.FinalAt["end"], res.HeadAt["load end"], res.Finality.TxNotFinal)
	}
	if res.Finality.TxFinal == 0 || res.Finality.BlockSamples == 0 {
		t.Errorf("%s: nothing timed to finality (%d transfers, %d block samples)", sc.Name, res.Finality.TxFinal, res.Finality.BlockSamples)
	}
	if res.Finality.Truncated {
		t.Errorf("%s: the finality record outgrew its bounds", sc.Name)
	}
	return res
}

// checkStall checks the final heights at event ev (just before its Do) of
// the nodes in side against the highest head at event from (the start of
// a split): a side with at most 2/3 of the stake cannot finalize anything
// it did not have before the split (a final block needs more than 2/3 of
// the votes, for it and for a child, and the other side's votes stopped
// at the split); a side with more than 2/3 keeps finalizing past it.
func checkStall(t *testing.T, res Result, from, ev string, side []int, moreThan2of3 bool) {
	t.Helper()
	head := res.HeadAt[from]
	var hi uint64
	for _, i := range side {
		hi = max(hi, res.FinalAt[ev][i])
		if !moreThan2of3 && res.FinalAt[ev][i] > head {
			t.Errorf("node %d (a side with at most 2/3 of the stake) final at height %d before %s, above the highest head %d at %s",
				i, res.FinalAt[ev][i], ev, head, from)
		}
	}
	if moreThan2of3 && hi <= head {
		t.Errorf("nodes %v (more than 2/3 of the stake) final at most at height %d before %s: no progress past the highest head %d at %s",
			side, hi, ev, head, from)
	}
}

// TestTopologyLinks: the region matrix spreads the RTTs between regions
// evenly and keeps the intra-region RTT inside one.
func TestTopologyLinks(t *testing.T) {
	topo := DefaultTopology()
	cases := []struct {
		i, j int
		rtt  time.Duration
	}{
		{0, 3, 20 * time.Millisecond},  // both region 0
		{0, 1, 80 * time.Millisecond},  // 0-1
		{2, 0, 165 * time.Millisecond}, // 0-2
		{1, 2, 250 * time.Millisecond}, // 1-2
		{4, 5, 250 * time.Millisecond}, // 1-2
	}
	for _, c := range cases {
		if got := topo.Link(c.i, c.j).RTT; got != c.rtt {
			t.Errorf("link %d-%d: RTT %v, want %v", c.i, c.j, got, c.rtt)
		}
	}
	bad := []Topology{
		{Regions: 0},
		{Regions: 2, InterMin: 100 * time.Millisecond, InterMax: 50 * time.Millisecond},
		{Regions: 2, Loss: 1},
		{Regions: 2, Jitter: -1},
		{Regions: 2, Bandwidth: -1},
	}
	for _, b := range bad {
		if b.Validate() == nil {
			t.Errorf("%+v: accepted", b)
		}
	}
}

// TestSteadyLoad is scenario 1: steady load across nodes in three regions
// (20 ms inside, 80-250 ms between, 10 ms jitter, 1% loss).
func TestSteadyLoad(t *testing.T) {
	sc := Scenario{
		Name:        "steady load, 3 regions",
		Nodes:       size(6, 20),
		Duration:    dur(12*time.Second, 60*time.Second),
		LoadPerNode: 5,
	}
	res := runScenario(t, sc)
	slots := int(sc.Duration / (2 * time.Second))
	if res.Height < uint64(slots/2) {
		t.Errorf("height %d after %d slots: the chain barely moved", res.Height, slots)
	}
	if res.Txs == 0 {
		t.Errorf("no transaction committed (%d submitted)", res.Submitted)
	}
	if res.PropP50 <= 0 || res.PropP50 > time.Second {
		t.Errorf("block propagation p50 %v: not a wide-area network of 80-250 ms", res.PropP50)
	}
	if s := res.OffMainShare(); s > 0.5 {
		t.Errorf("%.0f%% of blocks ended off the main chain", 100*s)
	}
}

// TestPartitionHeal is scenarios 2 and 3: the network split (into halves;
// then into a side with more than 2/3 of the stake and the rest), each
// side spanning the regions, for some slots, then healed; every node must
// come back to one chain.
func TestPartitionHeal(t *testing.T) {
	n := size(6, 20)
	for _, split := range []struct {
		name string
		big  int // nodes on the first side
	}{
		{"halves", n / 2},
		{"more than 2/3 | the rest", n - n*3/10},
	} {
		t.Run(split.name, func(t *testing.T) {
			var a, b []int
			for i := range n {
				if i < split.big {
					a = append(a, i)
				} else {
					b = append(b, i)
				}
			}
			stalledSide := false
			var cutAt time.Time
			var splitSeen time.Duration
			var refused uint64
			leak := ""
			cut := dur(2*time.Second, 20*time.Second)
			heal := cut + dur(6*time.Second, splitFor(t))
			sc := Scenario{
				Name:        fmt.Sprintf("partition %d|%d, then heal", len(a), len(b)),
				Nodes:       n,
				Duration:    heal + dur(2*time.Second, 20*time.Second),
				LoadPerNode: 5,
				Events: []Event{
					{At: cut, Name: "partition", Do: func(w *Net) error { cutAt = time.Now(); return w.Partition(a, b) }},
					// The invariant check must see the split, or it could not
					// fail. A side forges only when one of its nodes' rank
					// comes (k slots for rank k), so the split lasts until
					// both sides forged; a lone node of the smaller side
					// may need up to n-1 slots after its last block.
					//
					// A side that forged nothing for 30 s, seen in earlier
					// runs, was the partition leaking (docs/NETWORK.md,
					// Findings): the sides never split. The cut now holds.
					{At: heal - 500*time.Millisecond, Name: "split seen", Do: func(w *Net) error {
						deadline := time.Now().Add(30 * time.Second)
						defer func() {
							leak = crossForged(w.Nodes(), [][]int{a, b}, cutAt.Add(time.Second))
							splitSeen = time.Since(cutAt)
						}()
						for CheckOneChain(w.Nodes()) == nil {
							if time.Now().After(deadline) {
								stalledSide = true
								return nil
							}
							time.Sleep(100 * time.Millisecond)
						}
						return nil
					}},
					{At: heal, Name: "heal", Do: func(w *Net) error { refused = w.Refused(); return w.Heal() }, WaitAgree: true},
				},
			}
			res := runScenario(t, sc)
			if _, ok := res.Agree["heal"]; !ok {
				t.Fatal("no agreement time after the heal")
			}
			if leak != "" {
				// A block made on one side after the cut reached the
				// other: the split checks below would check nothing.
				t.Fatalf("the partition leaked: %s (%s)", leak, sc.Name)
			}
			if stalledSide {
				t.Fatalf("no split seen in %v after the cut (%s): one side forged nothing", splitSeen.Round(time.Second), sc.Name)
			}
			t.Logf("split seen %v after the cut (looked for from 500 ms before the heal); %d streams, reads and writes refused across it",
				splitSeen.Round(time.Millisecond), refused)
			// Equal stakes: a side's share is its share of the nodes.
			checkStall(t, res, "partition", "heal", a, 3*len(a) > 2*n)
			checkStall(t, res, "partition", "heal", b, 3*len(b) > 2*n)
			if res.OffMain == 0 {
				t.Error("no block ended off the main chain: the partition did not split the forging")
			}
		})
	}
}

// crossForged names a block made after since (by its timestamp) on a
// node's main chain, forged by a node of another group: a partition that
// leaked. Empty: none.
func crossForged(nodes []*daemon.Node, groups [][]int, since time.Time) string {
	group := map[chain.Address]int{}
	for g, side := range groups {
		for _, i := range side {
			group[nodes[i].Address()] = g
		}
	}
	for g, side := range groups {
		for _, i := range side {
			n := nodes[i]
			for h := n.API().Height(); h > 0; h-- {
				b, err := n.API().BlockByHeight(h)
				if err != nil || b.Timestamp < since.UnixMilli() {
					break
				}
				if fg, ok := group[b.Forger]; ok && fg != g {
					return fmt.Sprintf("node %d has block %d (%s), made %v after the cut by a node of the other side",
						i, h, b.Hash(), time.UnixMilli(b.Timestamp).Sub(since.Add(-time.Second)).Round(time.Millisecond))
				}
			}
		}
	}
	return ""
}

// TestSlowForger is scenario 4: the node holding half of the stake (so
// often the rank-0 forger) sits behind a 400 ms, 5%-loss link.
func TestSlowForger(t *testing.T) {
	n := size(6, 20)
	stakes := make([]uint64, n)
	for i := range stakes {
		stakes[i] = 1
	}
	stakes[0] = uint64(n - 1)
	sc := Scenario{
		Name:        "rank-0 forger behind 400 ms, 5% loss",
		Nodes:       n,
		Stakes:      stakes,
		Duration:    dur(10*time.Second, 60*time.Second),
		LoadPerNode: 5,
		Events: []Event{{Name: "slow link", Do: func(w *Net) error {
			for j := 1; j < n; j++ {
				l := w.LinkOf(0, j)
				l.RTT, l.Loss = 400*time.Millisecond, 0.05
				if err := w.SetLink(0, j, l); err != nil {
					return err
				}
			}
			return nil
		}}},
	}
	res := runScenario(t, sc)
	if res.Txs == 0 {
		t.Errorf("no transaction committed (%d submitted)", res.Submitted)
	}
	if res.PropP50 < 100*time.Millisecond {
		t.Errorf("propagation p50 %v with a 400 ms forger: the slow link did not apply", res.PropP50)
	}
}

// TestThirdOffline is scenario 5: a third of the stake loses every link for
// a while, keeps running alone, then comes back.
func TestThirdOffline(t *testing.T) {
	n := size(6, 20)
	off := n / 3
	down := func(f func(*Net, int) error) func(*Net) error {
		return func(w *Net) error {
			for i := range off {
				if err := f(w, i); err != nil {
					return err
				}
			}
			return nil
		}
	}
	back := dur(2*time.Second, 10*time.Second) + dur(6*time.Second, 60*time.Second)
	// Each offline node is a side of its own: a block forged by another
	// node on its main chain, made after it went offline, is a leak.
	groups := [][]int{nil}
	for i := range n {
		if i < off {
			groups = append(groups, []int{i})
		} else {
			groups[0] = append(groups[0], i)
		}
	}
	var offAt time.Time
	var refused uint64
	leak := ""
	sc := Scenario{
		Name:        "a third of the stake offline, then back",
		Nodes:       n,
		Duration:    back + dur(2*time.Second, 20*time.Second),
		LoadPerNode: 5,
		Events: []Event{
			{At: dur(2*time.Second, 10*time.Second), Name: "offline", Do: func(w *Net) error {
				offAt = time.Now()
				return down((*Net).Offline)(w)
			}},
			{At: back, Name: "back", Do: func(w *Net) error {
				leak = crossForged(w.Nodes(), groups, offAt.Add(time.Second))
				refused = w.Refused()
				return down((*Net).Online)(w)
			}, WaitAgree: true},
		},
	}
	res := runScenario(t, sc)
	if _, ok := res.Agree["back"]; !ok {
		t.Fatal("no agreement time after the nodes came back")
	}
	if leak != "" {
		// The split checks below would check nothing.
		t.Fatalf("the offline nodes were not cut off: %s (%s)", leak, sc.Name)
	}
	t.Logf("%d streams, reads and writes refused across the cuts", refused)
	var offline, online []int
	for i := range n {
		if i < off {
			offline = append(offline, i)
		} else {
			online = append(online, i)
		}
	}
	// Each offline node alone; the rest hold exactly 2/3 with 6 nodes (a
	// stall), 70% with 20 (n/3 = 6 offline: finality goes on).
	checkStall(t, res, "offline", "back", online, 3*len(online) > 2*n)
	for _, i := range offline {
		checkStall(t, res, "offline", "back", []int{i}, false)
	}
}

// TestJoinUnderLoad is scenario 6: a node with no stake joins mid-run and
// syncs the chain from its peers while the load goes on.
func TestJoinUnderLoad(t *testing.T) {
	join := dur(5*time.Second, 30*time.Second)
	sc := Scenario{
		Name:        "a node joins mid-run under load",
		Nodes:       size(5, 19),
		Duration:    join + dur(4*time.Second, 30*time.Second),
		LoadPerNode: 5,
		Events: []Event{{At: join, Name: "join", Do: func(w *Net) error {
			_, err := w.AddNode()
			return err
		}, WaitAgree: true}},
	}
	res := runScenario(t, sc)
	if res.Nodes != sc.Nodes+1 {
		t.Fatalf("report covers %d nodes, want %d with the one that joined", res.Nodes, sc.Nodes+1)
	}
	if _, ok := res.Agree["join"]; !ok {
		t.Fatal("no agreement time after the join")
	}
}

// TestLoopbackControl is the steady load with no latency, jitter or loss
// (full runs only): what the process and its cores do alone, to tell the
// network's effect from the machine's in the other runs.
func TestLoopbackControl(t *testing.T) {
	if !full() {
		t.Skip("a control for the full runs (POSD_WAN_FULL=1)")
	}
	runScenario(t, Scenario{
		Name:        "steady load, no latency (control)",
		Nodes:       size(6, 20),
		Topology:    Topology{Regions: 1},
		Duration:    dur(12*time.Second, 60*time.Second),
		LoadPerNode: 5,
	})
}
