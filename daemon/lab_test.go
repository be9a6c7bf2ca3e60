package daemon

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/byzantine"
	"github.com/poslab/posd/keystore"
)

// labNet runs three nodes on a lab genesis; node 2 (stake 40 of 60) runs
// behaviour.
func labNet(t *testing.T, behaviour string, params ...func(*GenesisParams)) *Devnet {
	t.Helper()
	d := startNet(t, []uint64{10, 40, 10}, func(i int, c *Config) {
		if i == 2 {
			c.Byzantine = behaviour
		}
	}, append([]func(*GenesisParams){func(p *GenesisParams) { p.Lab = true }}, params...)...)
	waitPeers(t, d, 2)
	return d
}

// untilEquivocation sends transfers until node 2 has equivocated (made a
// twin for a block it forged) and returns the height of its first.
func untilEquivocation(t *testing.T, d *Devnet) {
	t.Helper()
	user, _ := keystore.Generate()
	for round := 0; byzantine.Twins(d.Nodes[1].forger.Behaviour()) == 0; round++ {
		if round > 40 {
			t.Fatal("node 2 forged no block in 40 rounds")
		}
		nonce := d.Nodes[0].API().Account(user.Address()).Nonce
		sendFrom(t, d.Nodes[0], user, chain.Transaction{Type: chain.TxExchange, To: user.Address(), Amount: 1})
		waitUntil(t, 30*time.Second, fmt.Sprintf("round %d committed", round), func() bool {
			return d.Nodes[0].API().Account(user.Address()).Nonce > nonce || byzantine.Twins(d.Nodes[1].forger.Behaviour()) > 0
		})
	}
}

// firstSlashing waits until every node's main chain carries a slashing of
// node 2 and returns it, with the nodes' views of node 2's stake.
func firstSlashing(t *testing.T, d *Devnet) (chain.Slashing, []uint64) {
	t.Helper()
	cheat := d.Nodes[1].Address()
	var found chain.Slashing
	var stakes []uint64
	waitUntil(t, 60*time.Second, "every node slashed node 2 for the same height, with the same stake left", func() bool {
		if !agreed(d.Nodes...) {
			return false
		}
		stakes = stakes[:0]
		first := true
		for _, n := range d.Nodes {
			snap := n.chain.Snapshot()
			var s chain.Slashing
			ok := false
			for h := uint64(1); h <= snap.Height() && !ok; h++ {
				s, ok = snap.Slashed(cheat, h)
			}
			if !ok || (!first && s != found) {
				return false
			}
			found, first = s, false
			stakes = append(stakes, snap.Account(cheat).Stake)
		}
		return true
	})
	return found, stakes
}

// TestEquivocatorSlashed: node 2 signs two blocks for a slot it wins; the
// honest nodes see both, the next block carries the evidence (within 3
// slots), and every node burns the same half of its stake.
func TestEquivocatorSlashed(t *testing.T) {
	d := labNet(t, "equivocate")
	if got := d.Nodes[1].API().Status().Byzantine; got != "equivocate" {
		t.Fatalf("status byzantine %q", got)
	}
	// Node 1's event stream must tell of the evidence and the slashing.
	resp, err := http.Get(d.Nodes[0].APIURL() + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	seen := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok && ev != "block" {
				select {
				case seen <- ev:
				default:
				}
			}
		}
	}()
	untilEquivocation(t, d)
	s, stakes := firstSlashing(t, d)
	got := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for !got["evidence"] || !got["slashing"] {
		select {
		case ev := <-seen:
			got[ev] = true
		case <-deadline:
			t.Fatalf("/v1/events told only %v", got)
		}
	}
	var listed []rpc.Evidence
	if err := getJSON(d.Nodes[2].APIURL()+"/v1/evidence", &listed); err != nil || len(listed) == 0 {
		t.Fatalf("GET /v1/evidence on node 3: %v, %d items", err, len(listed))
	}
	if s.IncludedIn-s.Height > 3 {
		t.Fatalf("equivocation at %d slashed in block %d: more than 3 slots later", s.Height, s.IncludedIn)
	}
	if s.Burned != 20 {
		t.Fatalf("burned %d of 40, want 20 (slash_percent 50)", s.Burned)
	}
	for i, st := range stakes {
		if st != stakes[0] || st > 20 {
			t.Fatalf("node %d sees stake %d for the equivocator (node 1: %d), want at most 20 and agreement", i+1, st, stakes[0])
		}
	}
	waitUntil(t, 10*time.Second, "the slashing listed by GET /v1/evidence", func() bool {
		for _, e := range d.Nodes[0].API().Evidence() {
			if e.Forger == d.Nodes[1].Address() && e.Height == s.Height {
				return e.IncludedIn != nil && *e.IncludedIn == s.IncludedIn && e.Slashed != nil && *e.Slashed == s.Burned
			}
		}
		return false
	})
	t.Logf("equivocation at height %d, slashed in block %d, %d burned; stakes seen %v", s.Height, s.IncludedIn, s.Burned, stakes)
}

// TestEquivocatorKeepsStakeWithoutSlashing: slash_percent 0 switches the
// defence off: the evidence is committed, nothing is burned.
func TestEquivocatorKeepsStakeWithoutSlashing(t *testing.T) {
	d := labNet(t, "equivocate", func(p *GenesisParams) { p.SlashPercent = 0 })
	untilEquivocation(t, d)
	s, stakes := firstSlashing(t, d)
	if s.Burned != 0 {
		t.Fatalf("burned %d with slash_percent 0", s.Burned)
	}
	for i, st := range stakes {
		if st != 40 {
			t.Fatalf("node %d sees stake %d, want 40 kept", i+1, st)
		}
	}
}

// TestByzantineRefusedOffLab: no behaviour runs on a network whose genesis
// does not say lab.
func TestByzantineRefusedOffLab(t *testing.T) {
	p := DefaultGenesisParams()
	p.ChainID = "posd-notlab"
	_, err := Open(Config{Home: t.TempDir(), NewNetwork: true, Genesis: p, NoNetwork: true, Byzantine: "equivocate"})
	if !errors.Is(err, byzantine.ErrNotLab) {
		t.Fatalf("got %v, want ErrNotLab", err)
	}
	p.Lab = true
	_, err = Open(Config{Home: t.TempDir(), NewNetwork: true, Genesis: p, NoNetwork: true, Byzantine: "teleport"})
	if err == nil {
		t.Fatal("an unknown behaviour was accepted")
	}
}

// slotCost runs rounds of one transaction each on a lab devnet whose node
// 2 runs behaviour, and returns for each committed block whether node 2
// was elected at rank 0 for it, its rank, and the time from submission to
// the moment every node agreed on it.
type roundCost struct {
	height   uint64
	won      bool // node 2 was the rank-0 candidate
	rank     uint32
	forger   chain.Address
	final    time.Duration
	stampLag int64 // block timestamp − submission, ms
}

func slotCosts(t *testing.T, behaviour string, rounds int) (*Devnet, []roundCost) {
	t.Helper()
	d := labNet(t, behaviour)
	return d, measureRounds(t, d, func(costs []roundCost) bool { return len(costs) >= rounds })
}

// measureRounds sends one transaction a round, each once every node agrees
// and its pool is empty, until enough says the rounds measured suffice.
func measureRounds(t *testing.T, d *Devnet, enough func([]roundCost) bool) []roundCost {
	t.Helper()
	g := d.Nodes[0].API().Genesis()
	user, _ := keystore.Generate()
	var out []roundCost
	for round := 0; !enough(out); round++ {
		waitUntil(t, 30*time.Second, "agreement before the round", func() bool { return agreed(d.Nodes...) })
		parent := d.Nodes[0].API().Head()
		state := d.Nodes[0].chain.Snapshot().ReadState()
		cands, err := chain.Elect(g, &parent.Header, state)
		if err != nil {
			t.Fatal(err)
		}
		submitted := time.Now()
		id := sendFrom(t, d.Nodes[0], user, chain.Transaction{Type: chain.TxExchange, To: user.Address(), Amount: 1})
		var b *chain.Block
		waitUntil(t, 30*time.Second, fmt.Sprintf("round %d final on every node", round), func() bool {
			if !agreed(d.Nodes...) {
				return false
			}
			info, err := d.Nodes[0].API().TxInfo(id)
			if err != nil || info.Height == nil {
				return false
			}
			b, err = d.Nodes[0].API().BlockByHeight(*info.Height)
			return err == nil
		})
		out = append(out, roundCost{
			height: b.Height, won: len(cands) > 0 && cands[0] == d.Nodes[1].Address(), rank: b.Rank, forger: b.Forger,
			final: time.Since(submitted), stampLag: b.Timestamp - submitted.UnixMilli(),
		})
	}
	return out
}

// TestOfflineCostsOneSlot: an offline staker never forges, and each height
// it wins is forged by rank 1, one slot later: the cost is one slot.
func TestOfflineCostsOneSlot(t *testing.T) {
	d, costs := slotCosts(t, "offline", 12)
	slot := d.Nodes[0].API().Genesis().SlotMs
	won := 0
	for _, c := range costs {
		if c.forger == d.Nodes[1].Address() {
			t.Fatalf("the offline node forged block %d", c.height)
		}
		if c.won {
			won++
			if c.rank != 1 {
				t.Errorf("block %d: node 2 offline at rank 0, block at rank %d (want the next rank)", c.height, c.rank)
			}
		} else if c.rank != 0 {
			t.Errorf("block %d at rank %d though node 2 was not rank 0", c.height, c.rank)
		}
		// The forger dates the block when it forges: rank × slot after
		// the transaction was due, plus gossip; a slot of slack for 2 cores.
		if c.stampLag > int64(c.rank)*slot+slot {
			t.Errorf("block %d (rank %d) dated %d ms after the transaction: more than %d", c.height, c.rank, c.stampLag, int64(c.rank)*slot+slot)
		}
		t.Logf("block %d: node 2 rank 0 %v, rank %d, dated +%d ms, final after %v", c.height, c.won, c.rank, c.stampLag, c.final.Round(time.Millisecond))
	}
	if won == 0 {
		t.Fatal("node 2 (two thirds of the stake) never won a height: the test measured nothing")
	}
}

// TestWithholdCostsOneSlot: a withholding forger publishes its block a
// slot late; its block, of a better rank, still wins, and the chain loses
// one slot per block it wins.
//
// The cost is measured against the honest heights of the same run, by
// medians: on 2 shared cores a round can stall for seconds whoever forges
// it, and a bound on the worst round or in absolute time measures the
// machine rather than the behaviour. Heartbeats are off: node 2 withholds
// its empty blocks too, so with them on a round would start while withheld
// heartbeats are still in flight and measure them as well; the claim is
// about the block that carries the transaction.
func TestWithholdCostsOneSlot(t *testing.T) {
	d := labNet(t, "withhold", func(p *GenesisParams) { p.Heartbeat = false })
	// Node 2 (two thirds of the stake) wins about two rounds in three:
	// run until both kinds have enough rounds for a median.
	const least = 3
	costs := measureRounds(t, d, func(costs []roundCost) bool {
		if len(costs) >= 40 {
			t.Fatalf("40 rounds without %d of each kind: %d", least, len(costs))
		}
		won := 0
		for _, c := range costs {
			if c.won {
				won++
			}
		}
		return len(costs) >= 8 && won >= least && len(costs)-won >= least
	})
	slot := time.Duration(d.Nodes[0].API().Genesis().SlotMs) * time.Millisecond
	var honest, withheld []time.Duration
	kept := 0
	for _, c := range costs {
		t.Logf("block %d: node 2 rank 0 %v, forger %s rank %d, final after %v", c.height, c.won, c.forger.Short(), c.rank, c.final.Round(time.Millisecond))
		if !c.won {
			honest = append(honest, c.final)
			continue
		}
		withheld = append(withheld, c.final)
		if c.forger == d.Nodes[1].Address() && c.rank == 0 {
			kept++
		}
	}
	// Published late, the block of rank 0 beats the one the next rank
	// forged meanwhile, at equal height. It loses when a block carrying
	// votes was built on the rank-1 block before it arrived (the higher
	// branch wins): a race at the slot boundary that a loaded machine
	// sometimes loses (1 height in 11 in one CI run). Most must be kept;
	// a chain that preferred the block seen first would keep none.
	if 2*kept <= len(withheld) {
		t.Errorf("node 2 won %d heights but the chain kept its late block at only %d of them", len(withheld), kept)
	}
	honestMed, withheldMed := percentileDur(honest, 0.5), percentileDur(withheld, 0.5)
	t.Logf("median finality: honest %v (%d), withheld %v (%d), slot %v", honestMed, len(honest), withheldMed, len(withheld), slot)
	// One slot withheld, then the block crosses the network and replaces
	// the next rank's: half a slot of slack for that and for 2 shared
	// cores. Withholding two slots, or a chain that waits a slot more
	// before it takes the late block, fails.
	if limit := honestMed + slot + slot/2; withheldMed > limit {
		t.Errorf("withheld heights became final after %v (median), honest ones after %v: more than one slot (%v) beyond, limit %v", withheldMed, honestMed, slot, limit)
	}
	// And it does cost the slot: a chain that took the next rank's block
	// at once would not be measuring a withheld block.
	if withheldMed < honestMed+slot/2 {
		t.Errorf("withheld heights became final after %v (median), honest ones after %v: the block was not withheld", withheldMed, honestMed)
	}
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestPrivateReversesPaymentWithoutHeartbeat: node 2, a third of the
// stake, pays the merchant in public and forges a private chain with a
// double spend from the block before; with the heartbeat off the idle
// public chain stops once the payment is 6 deep, the private chain
// overtakes it, and every node reorganises: the merchant is not paid.
// Finality is off (no node votes): v2's attack. With the nodes voting,
// the payment is final long before the private chain is published, and
// fork choice v3 never leaves it.
func TestPrivateReversesPaymentWithoutHeartbeat(t *testing.T) {
	d := startNet(t, []uint64{10, 10, 10}, func(i int, c *Config) {
		c.NoVote = true
		if i == 2 {
			c.Byzantine = "private"
		}
	}, func(p *GenesisParams) { p.Lab, p.Heartbeat = true, false })
	attacker, merchant := runPrivateAttack(t, d)
	waitSettled(t, d, attacker, merchant, 0)
	t.Logf("payment reversed: private chain published up to height %d; head %d", byzantine.Published(attacker), d.Nodes[0].API().Height())
}

// runPrivateAttack drives the private attack on d (heartbeat off): one
// transfer moves the chain, so the attacker pays the merchant; then other
// traffic makes the payment PrivateDepth deep, and the network is idle.
// It returns the attacker's behaviour and the merchant.
func runPrivateAttack(t *testing.T, d *Devnet) (byzantine.Behaviour, chain.Address) {
	t.Helper()
	waitPeers(t, d, 2)
	var attacker byzantine.Behaviour
	for _, n := range d.Nodes {
		if b := n.forger.Behaviour(); b != nil && b.Name() == "private" {
			attacker = b
		}
	}
	if attacker == nil {
		t.Fatal("no node runs the private attack")
	}
	user, _ := keystore.Generate()
	send := func(round int) {
		nonce := d.Nodes[0].API().Account(user.Address()).Nonce
		sendFrom(t, d.Nodes[0], user, chain.Transaction{Type: chain.TxExchange, To: user.Address(), Amount: 1})
		waitUntil(t, 30*time.Second, fmt.Sprintf("traffic %d committed", round), func() bool {
			return d.Nodes[0].API().Account(user.Address()).Nonce > nonce
		})
	}
	send(0) // the chain moves: the attacker pays
	merchant := byzantine.Merchant()
	waitUntil(t, 30*time.Second, "the merchant paid", func() bool {
		return d.Nodes[0].API().Account(merchant).Balance == byzantine.PrivatePayment
	})
	for round := 1; round <= byzantine.PrivateDepth-1; round++ {
		send(round)
	}
	return attacker, merchant
}

// waitSettled waits until the attacker published its private chain and
// every node agrees, with the merchant holding want.
func waitSettled(t *testing.T, d *Devnet, attacker byzantine.Behaviour, merchant chain.Address, want uint64) {
	t.Helper()
	waitUntil(t, 120*time.Second, fmt.Sprintf("the private chain published and every node settled with the merchant holding %d", want), func() bool {
		if byzantine.Published(attacker) == 0 || !agreed(d.Nodes...) {
			return false
		}
		for _, n := range d.Nodes {
			if n.API().Account(merchant).Balance != want {
				return false
			}
		}
		return true
	})
}

// The same attack with the heartbeat on is TestPrivateChainAgainstHeartbeat
// (private_test.go): a single run shows the mechanism; the probability
// is the lab's (poscli sim --attack private, docs/ATTACKS.md).

// TestPrivateChainAgainstFinality is the attack above with finality on,
// on both sides of the one-third line. The attacker does not vote; it pays
// the merchant, forges a private chain with a double spend and publishes
// it once the payment is 6 deep and its chain is higher.
//   - Under a third (9 of 29 lots): the honest 20 of 29 make the payment's
//     block final before that, so every node refuses the higher branch
//     (conflicts_with_final): the merchant keeps the payment, and the nodes
//     stay on a chain lower than the one published, which v2 would take.
//   - A third (10 of 30): the honest 20 of 30 are not more than 2/3,
//     nothing becomes final, and the private chain reverses the payment as
//     in v2.
func TestPrivateChainAgainstFinality(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stakes []uint64
		kept   bool
	}{
		{"under a third: the final payment stays", []uint64{10, 10, 9}, true},
		{"a third: nothing final, the payment reversed", []uint64{10, 10, 10}, false},
	} {
		t.Run(tc.name, func(t *testing.T) { privateAgainstFinality(t, tc.stakes, tc.kept) })
	}
}

func privateAgainstFinality(t *testing.T, stakes []uint64, kept bool) {
	d := startNet(t, stakes, func(i int, c *Config) {
		if i == len(stakes) { // NodeConfig counts from 1: the last node
			c.Byzantine = "private"
			c.NoVote = true
		}
	}, func(p *GenesisParams) { p.Lab, p.Heartbeat = true, false })
	attacker, merchant := runPrivateAttack(t, d)
	want := uint64(0)
	if kept {
		want = byzantine.PrivatePayment
	}
	waitSettled(t, d, attacker, merchant, want)
	pub, head := byzantine.Published(attacker), d.Nodes[0].API().Height()
	_, _, final := finOf(d.Nodes[0])
	switch {
	case kept && (final == 0 || pub <= head):
		t.Fatalf("final %d, private tip %d, head %d: want a final payment and a higher private chain refused", final, pub, head)
	case !kept && final != 0:
		t.Fatalf("final %d with a third of the stake silent", final)
	}
	t.Logf("private chain up to height %d; nodes at height %d, final %d; merchant holds %d", pub, head, final, want)
}
