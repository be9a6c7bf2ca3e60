package attack

import (
	"context"
	"encoding/hex"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/poslab/posd/chain/election"
	"github.com/poslab/posd/lab/stats"
)

func alg(t *testing.T, name string) election.Algorithm {
	t.Helper()
	a, err := election.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestChainAttacks pins the share of blocks a grinding or withholding
// attacker gets, with tolerances from the number of heights: sd =
// sqrt(p(1-p)/n) is the spread of a fair chain's share.
func TestChainAttacks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		minSigma float64 // the share is at least this many sd above p
		maxAbs   float64 // |share - p| is at most this many sd (0: no bound)
	}{
		// With block_hash the forger chooses the next seed: once elected it
		// keeps every block.
		{"grind/block_hash/weighted", Config{Attack: Grind, Election: alg(t, "weighted"), AttackerShare: 0.1, SeedSource: SeedBlockHash, Rounds: 3000}, 50, 0},
		{"grind/block_hash/lottery", Config{Attack: Grind, Election: alg(t, "lottery"), AttackerShare: 0.1, SeedSource: SeedBlockHash, Rounds: 300, Variants: 200}, 10, 0},
		// With vrf every version of the block has the same seed: the fair
		// share, within 3 sd.
		{"grind/vrf/weighted", Config{Attack: Grind, Election: alg(t, "weighted"), AttackerShare: 0.1, SeedSource: SeedVRF, Rounds: 5000}, math.Inf(-1), 3},
		{"grind/vrf/lottery", Config{Attack: Grind, Election: alg(t, "lottery"), AttackerShare: 0.1, SeedSource: SeedVRF, Rounds: 2000, Seed: "lottery"}, math.Inf(-1), 3},
		{"grind/vrf/weighted/third", Config{Attack: Grind, Election: alg(t, "weighted"), AttackerShare: 0.33, Honest: 2, SeedSource: SeedVRF, Rounds: 5000}, math.Inf(-1), 3},
		// Withholding with vrf: one bit, which trades a block for the next
		// one; the share stays fair.
		{"withhold/vrf", Config{Attack: Withhold, Election: alg(t, "weighted"), AttackerShare: 0.25, SeedSource: SeedVRF, Rounds: 5000}, math.Inf(-1), 3},
		// With block_hash the withholder grinds its own block as well.
		{"withhold/block_hash", Config{Attack: Withhold, Election: alg(t, "weighted"), AttackerShare: 0.25, SeedSource: SeedBlockHash, Rounds: 2000}, 50, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.cfg)
			p := r.AttackerStakeShare
			sd := stats.BinomialSD(p, r.Blocks)
			t.Logf("stake share %.4f, block share %.4f (%d of %d), %+.2f sd, longest run %d", p, r.AttackerBlockShare, r.AttackerBlocks, r.Blocks, r.Sigmas, r.LongestRun)
			if r.Blocks != r.Config.Rounds || math.Abs(r.SD-sd) > 1e-15 || math.Abs(r.Sigmas-(r.AttackerBlockShare-p)/sd) > 1e-9 {
				t.Fatalf("bookkeeping: %+v", r)
			}
			if math.Abs(p-tc.cfg.AttackerShare) > 0.005 {
				t.Errorf("stake share %.4f, asked %.4f", p, tc.cfg.AttackerShare)
			}
			if r.AttackerBlockShare < p+tc.minSigma*sd {
				t.Errorf("block share %.4f, want at least %.4f (%v sd above %.4f)", r.AttackerBlockShare, p+tc.minSigma*sd, tc.minSigma, p)
			}
			if tc.maxAbs > 0 && math.Abs(r.AttackerBlockShare-p) > tc.maxAbs*sd {
				t.Errorf("block share %.4f is %+.2f sd from %.4f, want within %v", r.AttackerBlockShare, r.Sigmas, p, tc.maxAbs)
			}
			if !(r.Lo <= r.AttackerBlockShare && r.AttackerBlockShare <= r.Hi) {
				t.Errorf("interval [%v, %v] misses %v", r.Lo, r.Hi, r.AttackerBlockShare)
			}
		})
	}
}

// TestWithholdOneBit: the withholder raises its chance of being rank 0
// again after its own rank-0 heights above the fair p, but one bit cannot
// take it above 1-(1-p)^2 (the better of two independent seeds); every
// wait costs a slot.
func TestWithholdOneBit(t *testing.T) {
	r := run(t, Config{Attack: Withhold, Election: alg(t, "weighted"), AttackerShare: 0.25, Rounds: 8000})
	p := r.AttackerStakeShare
	n := r.AfterRankZero
	next := float64(r.NextRankZero) / float64(n)
	bound := 1 - (1-p)*(1-p)
	sd := stats.BinomialSD(bound, n)
	t.Logf("rank 0 again after rank 0: %.4f (%d of %d; fair %.4f, one bit at most %.4f); withheld %d of %d waits", next, r.NextRankZero, n, p, bound, r.Withheld, r.Waited)
	if next < p+5*stats.BinomialSD(p, n) {
		t.Errorf("no bias: %.4f against fair %.4f", next, p)
	}
	if next > bound+3*sd {
		t.Errorf("more than one bit: %.4f above %.4f", next, bound)
	}
	if r.DelaySlots != r.Waited || r.Waited < r.AttackerBlocks || r.Withheld == 0 {
		t.Errorf("waited %d, delay %d slots, attacker blocks %d, withheld %d", r.Waited, r.DelaySlots, r.AttackerBlocks, r.Withheld)
	}
	// Without the bit (block_hash aside) nothing is withheld: the grind
	// attacker never waits.
	g := run(t, Config{Attack: Grind, Election: alg(t, "weighted"), AttackerShare: 0.25, Rounds: 2000})
	if g.Waited != 0 || g.Withheld != 0 || g.DelaySlots != 0 {
		t.Errorf("grind waited: %+v", g)
	}
}

// TestPrivateHeartbeat: the private attacker with a third of the stake,
// from the block before a payment, in an idle network.
func TestPrivateHeartbeat(t *testing.T) {
	weighted := alg(t, "weighted")
	base := Config{Attack: Private, Election: weighted, AttackerShare: 0.33, Rounds: 800, Workers: 2}
	off, on := base, base
	off.Heartbeat, on.Heartbeat = false, true
	roff, ron := run(t, off), run(t, on)
	for k := range roff.Reversal {
		a, b := roff.Reversal[k], ron.Reversal[k]
		t.Logf("k=%2d  heartbeat off %.4f [%.4f, %.4f]   on %.4f [%.4f, %.4f]", a.K, a.Probability, a.Lo, a.Hi, b.Probability, b.Lo, b.Hi)
	}
	// Heartbeat off: a payment 6 deep is reversed with high probability
	// (all the attacker needs is 7 blocks before its chain dies).
	if six := roff.Reversal[5]; six.K != 6 || six.Lo < 0.9 {
		t.Errorf("heartbeat off, k=6: %+v, want above 0.9", six)
	}
	// Heartbeat on: clearly less, and less the deeper the payment.
	if a, b := roff.Reversal[5], ron.Reversal[5]; b.Hi >= a.Lo-0.3 {
		t.Errorf("k=6: heartbeat on %.4f is not far below off %.4f", b.Probability, a.Probability)
	}
	for k := 1; k < len(ron.Reversal); k++ {
		if ron.Reversal[k].Reversed > ron.Reversal[k-1].Reversed {
			t.Errorf("heartbeat on: k=%d reversed more often than k=%d", k+1, k)
		}
	}
	// A payment 64 deep: with the heartbeat the honest chain is 64 blocks
	// above the fork when the merchant accepts and 65 a slot later (then
	// no reorg may reach it), so the attacker must have forged 65 blocks
	// in 64 slots: rare. An idle chain without the heartbeat loses it as
	// soon as the attacker has forged 65 blocks.
	deep := base
	deep.Depth, deep.Rounds, deep.Honest = 64, 300, 4 // 5 stakers: the attacker's chain never dies
	deep.Heartbeat = true
	r := run(t, deep)
	t.Logf("heartbeat on, 5 stakers, k=64: %d of %d reversed", r.Reversal[63].Reversed, r.Config.Rounds)
	if r.Reversal[63].Hi > 0.05 {
		t.Errorf("heartbeat on, k=64: %+v", r.Reversal[63])
	}
	deep.Heartbeat = false
	if r := run(t, deep); r.Reversal[63].Reversed != r.Config.Rounds {
		t.Errorf("heartbeat off, k=64, no dead chains: %d of %d reversed", r.Reversal[63].Reversed, r.Config.Rounds)
	}
}

// TestPrivateBlockHash: with the v1 seed the private attacker grinds
// every private block to rank 0 and forges its chain at once: the
// heartbeat does not help (only chains born dead, the attacker beyond
// max_rank at P, fail).
func TestPrivateBlockHash(t *testing.T) {
	r := run(t, Config{Attack: Private, Election: alg(t, "weighted"), AttackerShare: 0.33, SeedSource: SeedBlockHash, Heartbeat: true, Rounds: 300, Variants: 100})
	if last := r.Reversal[len(r.Reversal)-1]; last.Lo < 0.95 {
		t.Errorf("block_hash, heartbeat on, k=12: %+v", last)
	}
}

// TestPrivateModelLimits pins two measured facts the docs report: with
// few honest stakers the attacker's private chain is as fast as the
// heartbeat or faster (its rank-0 blocks cost no time), and an idle gap
// before the payment lets it date its blocks into the past.
func TestPrivateModelLimits(t *testing.T) {
	weighted := alg(t, "weighted")
	// One honest staker: the attacker is rank 0 or 1, mean rank 0.67 slot
	// per block against the heartbeat's 1: it reverses everything.
	r := run(t, Config{Attack: Private, Election: weighted, AttackerShare: 0.33, Honest: 1, Heartbeat: true, Rounds: 300})
	if last := r.Reversal[len(r.Reversal)-1]; last.Lo < 0.95 {
		t.Errorf("one honest staker, heartbeat on, k=12: %+v", last)
	}
	// An idle gap of 1000 slots: the attacker has built far ahead before
	// the payment is even made.
	r = run(t, Config{Attack: Private, Election: weighted, AttackerShare: 0.33, Honest: 4, Heartbeat: true, Rounds: 300, IdleGap: 1000})
	if six := r.Reversal[5]; six.Lo < 0.95 {
		t.Errorf("idle gap 1000, heartbeat on, k=6: %+v", six)
	}
}

// TestMinGap: if every block cost a slot on top of its rank (a proposed
// rule, not in the v2 rules of docs/CONSENSUS.md), the attacker's free rank-0 blocks are gone and the
// heartbeat outpaces it even against one honest staker.
func TestMinGap(t *testing.T) {
	cfg := Config{Attack: Private, Election: alg(t, "weighted"), AttackerShare: 0.33, Honest: 1, Heartbeat: true, Rounds: 600, Workers: 2}
	v2 := run(t, cfg)
	cfg.MinGap = 1
	gap := run(t, cfg)
	a, b := v2.Reversal[11], gap.Reversal[11]
	t.Logf("one honest staker, heartbeat on, k=12: min gap 0 %.4f, min gap 1 %.4f [%.4f, %.4f]", a.Probability, b.Probability, b.Lo, b.Hi)
	if a.Lo < 0.95 || b.Hi > 0.2 {
		t.Errorf("k=12: min gap 0 %+v, min gap 1 %+v", a, b)
	}
	// The honest timeline: one block a slot with min gap 0; with 1, a slot
	// and one more whenever the attacker holds rank 0 (the honest rank 1
	// then waits two).
	m := newModel(Config{Election: alg(t, "weighted"), AttackerShare: 0.33, Honest: 1, Heartbeat: true, MinGap: 1}.withDefaults())
	var parent seed
	times := m.honestTimeline(parent, m.rank(parent), 1, 0, nil)
	twos := 0
	for i := 1; i < len(times); i++ {
		switch d := times[i] - times[i-1]; d {
		case TicksPerSlot:
		case 2 * TicksPerSlot:
			twos++
		default:
			t.Fatalf("honest block %d came %d slots after its parent", i, d)
		}
	}
	if len(times) != 65 || twos == 0 || twos > 40 {
		t.Errorf("%d honest blocks, %d two slots apart", len(times), twos)
	}
}

// TestReversedTimeline checks the race rule on hand-made timelines.
func TestReversedTimeline(t *testing.T) {
	cfg := Config{MaxReorg: 64}
	for _, tc := range []struct {
		name  string
		o     timeline
		times []int64 // when the attacker's blocks P, P+1, ... are ready (ticks)
		k     int
		want  bool
	}{
		{"two instant blocks beat one", timeline{honest: seq(0, 0+65), heartbeat: true}, slots(0, 0), 1, true},
		{"same moment: honest first", timeline{honest: seq(0, 0+65), heartbeat: true}, slots(0, 1), 1, false},
		{"equal height, attacker rank 0 at P", timeline{honest: seq(1, 1+65), heartbeat: true, tieWin: true}, slots(0, 1), 1, true},
		{"equal height, attacker higher rank at P", timeline{honest: seq(0, 0+65), heartbeat: true}, slots(0, 1, 2), 2, false},
		{"ahead before the merchant accepts, still ahead after", timeline{honest: seq(0, 0+65), heartbeat: true}, slots(0, 0, 0, 0), 3, true},
		{"ahead only before the merchant accepts", timeline{honest: seq(0, 0+65), heartbeat: true}, slots(0, 0, 5), 3, false},
		{"heartbeat off: the idle chain waits", timeline{honest: seq(0, 0+65)}, slots(0, 3, 9, 20, 50, 90, 200), 6, true},
		{"heartbeat off: one block short", timeline{honest: seq(0, 0+65)}, slots(0, 3, 9, 20, 50, 90), 6, false},
		{"heartbeat off: equal height with the lower rank", timeline{honest: seq(1, 1+65), tieWin: true}, slots(0, 3, 9, 20, 50, 90), 6, true},
		{"heartbeat on: too late, the reorg would pass max_reorg", timeline{honest: seq(0, 0+65), heartbeat: true}, seq(0, 70), 64, false},
		// Forking j beats below P-1: j more honest blocks to out-grow, and
		// the first differing block is no longer P (no tie win).
		{"two beats back: three blocks tie three", timeline{honest: seq(0, 0+65), heartbeat: true, back: 2, tieWin: true}, slots(0, 0, 0), 1, false},
		{"two beats back: four blocks beat three", timeline{honest: seq(0, 0+65), heartbeat: true, back: 2}, slots(0, 0, 0, 0), 1, true},
		{"63 beats back: a reorg of 64, allowed", timeline{honest: seq(0, 0+65), heartbeat: true, back: 63}, seq(-100, 0), 1, true},
		{"64 beats back: a reorg of 65, too deep", timeline{honest: seq(0, 0+65), heartbeat: true, back: 64}, seq(-100, 0), 1, false},
		{"k beyond the honest timeline", timeline{honest: seq(0, 0+12)}, slots(0), 13, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.o.reversed(tc.k, tc.times, cfg.MaxReorg); got != tc.want {
				t.Errorf("reversed = %v, want %v", got, tc.want)
			}
		})
	}
}

// seq is a, a+1, ..., b-1 slots, in ticks: one block per slot from a.
func seq(a, b int) []int64 {
	var s []int64
	for i := a; i < b; i++ {
		s = append(s, int64(i)*TicksPerSlot)
	}
	return s
}

// slots converts slots to ticks.
func slots(s ...int) []int64 {
	var t []int64
	for _, x := range s {
		t = append(t, int64(x)*TicksPerSlot)
	}
	return t
}

func TestRunIsReproducible(t *testing.T) {
	cfg := Config{Attack: Private, Election: alg(t, "weighted"), AttackerShare: 0.3, Heartbeat: true, Rounds: 300}
	one := cfg
	one.Workers = 1
	three := cfg
	three.Workers = 3
	var mu sync.Mutex
	var calls []int
	three.Progress = func(done, total int) {
		mu.Lock()
		calls = append(calls, done)
		mu.Unlock()
		if total != 300 {
			t.Errorf("progress total %d", total)
		}
	}
	a, b := run(t, one), run(t, three)
	if !reflect.DeepEqual(a.Reversal, b.Reversal) || a.AttackerBlocks != b.AttackerBlocks || a.DeadChains != b.DeadChains {
		t.Errorf("1 worker %+v\n3 workers %+v", a.Reversal, b.Reversal)
	}
	// 100 payments a worker: the last call is exactly the total.
	if len(calls) == 0 || calls[len(calls)-1] != 300 || !slices.IsSorted(calls) {
		t.Errorf("progress calls %v: rising to 300", calls)
	}
	var grind []int
	g := Config{Attack: Grind, Election: alg(t, "weighted"), AttackerShare: 0.3, Rounds: 300, Progress: func(done, total int) { grind = append(grind, done) }}
	run(t, g)
	if !slices.Equal(grind, []int{100, 200, 300}) {
		t.Errorf("grind progress calls %v", grind)
	}
	other := one
	other.Seed = "another"
	if c := run(t, other); reflect.DeepEqual(a.Reversal, c.Reversal) {
		t.Error("another seed, the same outcome")
	}
}

func TestConfigErrors(t *testing.T) {
	w := alg(t, "weighted")
	ok := Config{Attack: Grind, Election: w, AttackerShare: 0.2, Rounds: 10}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Attack = "nothing" }, `unknown attack "nothing": use grind, private, withhold`},
		{func(c *Config) { c.Election = nil }, "no election rule"},
		{func(c *Config) { c.AttackerShare = 0 }, "the attacker's share must be above 0 and below 1, got 0"},
		{func(c *Config) { c.AttackerShare = 1 }, "the attacker's share must be above 0 and below 1, got 1"},
		{func(c *Config) { c.AttackerShare = math.NaN() }, "the attacker's share must be above 0 and below 1, got NaN"},
		{func(c *Config) { c.Honest = -1 }, "honest stakers must be 1 to 1000, got -1"},
		{func(c *Config) { c.Honest, c.Stake = 20, 10 }, "the total stake must be 21 (a lot for each staker) to 1000000 lots, got 10"},
		{func(c *Config) { c.SeedSource = "coin" }, `unknown seed source "coin": use vrf or block_hash`},
		{func(c *Config) { c.Rounds = -5 }, "rounds must be 1 to 10000000, got -5"},
		{func(c *Config) { c.Variants = -1 }, "variants must be 1 to 1000000, got -1"},
		{func(c *Config) { c.Depth = 65 }, "depth must be 1 to max reorg (64), got 65"},
		{func(c *Config) { c.IdleGap = -1 }, "idle gap must be 0 to 1000000 slots, got -1"},
		{func(c *Config) { c.MinGap = 9 }, "min gap must be 0 to 8 slots in steps of 0.001, got 9"},
		{func(c *Config) { c.MinGap = 0.0001 }, "min gap must be 0 to 8 slots in steps of 0.001, got 0.0001"},
		{func(c *Config) { c.HeartbeatInterval = 1.5 }, "heartbeat interval must be 0.001 to 1 slot in steps of 0.001, got 1.5"},
		{func(c *Config) { c.HeartbeatInterval = -1 }, "heartbeat interval must be 0.001 to 1 slot in steps of 0.001, got -1"},
		{func(c *Config) { c.IdleBeat = -2 }, "idle beat must be 0 (rest) or 0.001 to 1000000 slots in steps of 0.001, got -2"},
		{func(c *Config) { c.IdleBeat = 8 }, "an idle beat needs the heartbeat on"},
		{func(c *Config) { c.IdleBeat = math.NaN() }, "idle beat must be 0 (rest) or 0.001 to 1000000 slots in steps of 0.001, got NaN"},
		{func(c *Config) { c.MaxRank = 1 }, "max rank must be 2 to 1000, got 1"},
	} {
		cfg := ok
		tc.edit(&cfg)
		_, err := Run(context.Background(), cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, k := range Kinds {
		cfg := ok
		cfg.Attack = k
		if _, err := Run(ctx, cfg); err == nil || !strings.Contains(err.Error(), "canceled") {
			t.Errorf("%s with a cancelled context: %v", k, err)
		}
	}
}

func TestStakeSplit(t *testing.T) {
	m := newModel(Config{AttackerShare: 0.33, Honest: 9, Stake: 100}.withDefaults())
	if m.attacker != 33 || m.tab.Total() != 100 || m.tab.Len() != 10 {
		t.Fatalf("attacker %d, total %d, stakers %d", m.attacker, m.tab.Total(), m.tab.Len())
	}
	for _, s := range m.tab.Stakers() {
		if s != attackerKey && (m.tab.Stake(s) < 7 || m.tab.Stake(s) > 8) {
			t.Errorf("%s holds %d lots, want 7 or 8", s, m.tab.Stake(s))
		}
	}
	// A tiny share still gets a lot; a huge one leaves each honest staker one.
	if m := newModel(Config{AttackerShare: 0.0001, Honest: 9, Stake: 100}); m.attacker != 1 {
		t.Errorf("tiny share: %d lots", m.attacker)
	}
	if m := newModel(Config{AttackerShare: 0.9999, Honest: 9, Stake: 100}); m.attacker != 91 {
		t.Errorf("huge share: %d lots", m.attacker)
	}
}

// TestSeedsAreTheRealElection: the model runs chain/election on the hex of
// the seed, as a node does on its parent's seed.
func TestSeedsAreTheRealElection(t *testing.T) {
	m := newModel(Config{Election: alg(t, "lottery"), AttackerShare: 0.33, Honest: 2, Stake: 100, MaxRank: 8, Seed: "x"})
	s := m.vrfSeed("honest-01", seed{}, 7)
	want := alg(t, "lottery").Rank(hexSeed(s), m.tab, 8)
	if got := m.rank(s); !reflect.DeepEqual(got, want) {
		t.Errorf("rank %v, chain/election %v", got, want)
	}
	if m.vrfSeed("a", s, 1) == m.vrfSeed("b", s, 1) || m.vrfSeed("a", s, 1) == m.vrfSeed("a", s, 2) || m.blockSeed("a", s, 1, 0) == m.blockSeed("a", s, 1, 1) {
		t.Error("seeds do not depend on forger, height and variant")
	}
}

func hexSeed(s seed) string { return hex.EncodeToString(s[:]) }

// BenchmarkAttack: one height (grind, withhold) or one payment (private)
// per op, single-threaded.
func BenchmarkAttack(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"grind/block_hash/lottery", Config{Attack: Grind, SeedSource: SeedBlockHash}},
		{"grind/vrf/lottery", Config{Attack: Grind}},
		{"withhold/vrf/lottery", Config{Attack: Withhold}},
		{"private/heartbeat/lottery", Config{Attack: Private, Heartbeat: true}},
		{"private/heartbeat/weighted", Config{Attack: Private, Heartbeat: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := tc.cfg
			cfg.AttackerShare, cfg.Rounds, cfg.Workers = 0.33, b.N, 1
			name := "lottery"
			if strings.HasSuffix(tc.name, "weighted") {
				name = "weighted"
			}
			a, _ := election.Get(name)
			cfg.Election = a
			if _, err := Run(context.Background(), cfg); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// TestHeartbeatInterval: a faster heartbeat (the honest rank 0 forges
// when the head is F slots old) makes the honest chain grow faster, by a
// measured amount, and cuts the reversals.
func TestHeartbeatInterval(t *testing.T) {
	base := Config{Attack: Private, Election: alg(t, "weighted"), AttackerShare: 0.33, Heartbeat: true, Rounds: 600, Workers: 2}
	slow, fast := base, base
	fast.HeartbeatInterval = 0.25
	rs, rf := run(t, slow), run(t, fast)
	// The honest chain's slots per block: F when an honest staker holds
	// rank 0, one slot (the rank-1 fallback) when the silent attacker
	// does, which with the weighted election is its stake share p. Each
	// block's wait is F + (1-F)·Bernoulli(p); tolerance: 5 sd of the mean
	// over 64 blocks a round.
	for _, r := range []*Result{rs, rf} {
		f, p := r.Config.HeartbeatInterval, r.AttackerStakeShare
		want := f + (1-f)*p
		sd := (1 - f) * stats.BinomialSD(p, 64*r.Config.Rounds)
		t.Logf("F=%v: honest chain %.4f slots per block (want %.4f ± %.4f); k=6 %.4f, 64 deep %d", f, r.HonestSlotsPerBlock, want, 5*sd, r.Reversal[5].Probability, r.Deep.Reversed)
		if math.Abs(r.HonestSlotsPerBlock-want) > 5*sd+1e-12 {
			t.Errorf("F=%v: %.4f slots per block, want %.4f within %.4f", f, r.HonestSlotsPerBlock, want, 5*sd)
		}
	}
	if a, b := rs.Reversal[5], rf.Reversal[5]; b.Hi >= a.Lo {
		t.Errorf("k=6: F=0.25 %+v not below F=1 %+v", b, a)
	}
	if a, b := rs.Reversal[11], rf.Reversal[11]; b.Hi >= a.Lo {
		t.Errorf("k=12: F=0.25 %+v not below F=1 %+v", b, a)
	}
	// F = 1 is the v2 rules' first cadence: the same outcome as leaving it unset.
	one := base
	one.HeartbeatInterval = 1
	if r := run(t, one); !reflect.DeepEqual(r.Reversal, rs.Reversal) {
		t.Error("F=1 differs from the default")
	}
}

// TestHonestTimelineGaps: with a heartbeat interval F and a min gap g the
// honest chain's blocks come max(F, g) slots apart (an honest rank 0) or
// 1+g (the rank-1 fallback when the attacker holds rank 0).
func TestHonestTimelineGaps(t *testing.T) {
	for _, tc := range []struct{ f, g float64 }{{0.1, 0}, {0.1, 0.1}, {0.25, 0.5}, {1, 0}} {
		m := newModel(Config{Election: alg(t, "weighted"), AttackerShare: 0.33, Heartbeat: true, HeartbeatInterval: tc.f, MinGap: tc.g}.withDefaults())
		var parent seed
		times := m.honestTimeline(parent, m.rank(parent), 1, 0, nil)
		short, long := ticks(max(tc.f, tc.g)), ticks(1+tc.g)
		if tc.f == 1 && tc.g == 0 {
			long = short // one slot covers the fallback
		}
		seen := map[int64]int{}
		for i := 1; i < len(times); i++ {
			d := times[i] - times[i-1]
			if d != short && d != long {
				t.Fatalf("F=%v g=%v: honest block %d came %d ticks after its parent, want %d or %d", tc.f, tc.g, i, d, short, long)
			}
			seen[d]++
		}
		if len(times) != 65 || seen[short] == 0 || (long != short && seen[long] == 0) {
			t.Errorf("F=%v g=%v: %d blocks, gaps %v", tc.f, tc.g, len(times), seen)
		}
	}
}

// TestIdleBeat: backdating into a rest, and forks from earlier beats.
// Resting, or beating every 32 slots while idle, leaves the attacker time
// to date a private chain into; a chain that never rests (idle beats as
// fast as the heartbeat) leaves none. And forks from the beats below the
// payment's parent are tries the attacker gets for free: with one-slot
// beats they reverse far more than a fork from P-1 alone.
func TestIdleBeat(t *testing.T) {
	base := Config{Attack: Private, Election: alg(t, "weighted"), AttackerShare: 0.33, Heartbeat: true, HeartbeatInterval: 0.25, Rounds: 100, Workers: 2}
	rest, idle32, never := base, base, base
	rest.IdleGap = 1000
	idle32.IdleGap, idle32.IdleBeat = 1000, 32
	never.IdleGap, never.IdleBeat = 1000, 0.25
	for _, tc := range []struct {
		name   string
		cfg    Config
		lo, hi float64 // bounds on the 95% interval of k=6
	}{
		{"rest", rest, 0.9, 1},
		{"idle beat 32", idle32, 0.9, 1},
		{"never rest", never, 0, 0.25},
	} {
		r := run(t, tc.cfg)
		six := r.Reversal[5]
		t.Logf("%s: k=6 %.4f [%.4f, %.4f]", tc.name, six.Probability, six.Lo, six.Hi)
		if six.Lo < tc.lo || six.Hi > tc.hi {
			t.Errorf("%s, k=6: %+v, want its interval within [%v, %v]", tc.name, six, tc.lo, tc.hi)
		}
	}
	// One-slot beats before the payment (the v2 rules' first cadence): forking
	// from one of 63 beats against from P-1 alone.
	one := base
	one.HeartbeatInterval, one.Rounds = 1, 150
	single := run(t, one)
	one.IdleGap, one.IdleBeat = 64, 1
	back := run(t, one)
	a, b := single.Reversal[5], back.Reversal[5]
	t.Logf("F=1, k=6: from P-1 %.4f, from any of 63 beats %.4f", a.Probability, b.Probability)
	if b.Lo < a.Hi+0.2 {
		t.Errorf("k=6: forks from earlier beats %+v not far above %+v", b, a)
	}
}
