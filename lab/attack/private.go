package attack

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"
	"sync"

	"github.com/poslab/posd/lab/stats"
)

// The private attack, one round per payment.
//
// Time is counted in ticks, TicksPerSlot to a slot, so that fractions of
// a slot (the heartbeat interval, a min gap) add up exactly. The payment
// reaches the network at time 0. Before it the chain rested IdleGap
// slots: its tip, the payment's parent P-1, was forged at -IdleGap; with
// IdleBeat M the resting chain forged an empty block every M slots, so
// P-1 is the last of those beats and the ones before it are M slots apart.
// The election on P-1's seed ranks the candidates for height P: the
// attacker, if rank 0, does not forge the payment (it wants it in a block
// of the chain it will replace), so the payment's block P is forged by the
// first honest candidate, of rank rh, as soon as the rules let it.
//
// With MinGap g (0 in the v2 rules, docs/CONSENSUS.md) every block costs g more slots: rank k
// forges (k+g) slots after its parent.
//
// The honest chain then grows:
//   - heartbeat on: the first honest candidate of each election forges an
//     empty block when the head is HeartbeatInterval (F) slots old if it
//     is rank 0 (no sooner than g slots), and (r+g) slots after its parent
//     at rank r > 0 (the attacker, rank 0 on the honest chain, stays
//     silent: that costs the honest chain the fallback's wait), until P is
//     max_reorg blocks deep, then it rests;
//   - heartbeat off: an idle chain does not grow. For the merchant to see k
//     confirmations, k-1 blocks of other traffic follow P, one per slot;
//     then the chain rests.
//
// The attacker forks from a block of the honest chain below P: P-1, or
// with idle beats any of the beats before it (j beats further back, at
// the price of j more honest blocks to out-grow); it tries each and
// publishes the first that wins. It forges only where it is elected: at
// height P+i, at its rank r_i in the election on its own parent's seed,
// (r_i + g) slots after its parent: it dates its blocks from the fork
// point, so an idle gap is time it need not wait for (backdating). When
// it is not among the max_rank candidates that chain ends (with vrf its
// seed is fixed, so it cannot retry). It publishes at the first moment
// after the merchant's k-th confirmation at which the fork choice prefers
// its chain (higher; at equal height, lower rank at height P) and the
// reorg is at most max_reorg blocks; that reverses the payment. Blocks
// made at the same moment count for the honest chain first.
func (m *model) private(ctx context.Context, res *Result) error {
	cfg := m.cfg
	prog := &progress{f: cfg.Progress, total: cfg.Rounds}
	type tally struct {
		reversed                     []int
		deep, dead, attacker, honest int
		honestTicks                  int64
	}
	tallies := make([]tally, cfg.Workers)
	var wg sync.WaitGroup
	errs := make([]error, cfg.Workers)
	for w := range cfg.Workers {
		tallies[w].reversed = make([]int, cfg.Depth+1)
		wg.Go(func() {
			t := &tallies[w]
			var pr privateRun
			done, reported := 0, 0
			for r := w; r < cfg.Rounds; r += cfg.Workers {
				if done%progressEvery == 0 {
					if err := ctx.Err(); err != nil {
						errs[w] = err
						return
					}
					prog.add(done - reported)
					reported = done
				}
				done++
				out := m.privateRound(r, &pr)
				for k := 1; k <= cfg.Depth; k++ {
					if out.won[k] {
						t.reversed[k]++
					}
				}
				if out.deep {
					t.deep++
				}
				if out.dead {
					t.dead++
				}
				t.attacker += out.raceAttacker
				t.honest += out.raceHonest
				t.honestTicks += out.honestSpan
			}
			prog.add(done - reported)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	reversed := make([]int, cfg.Depth+1)
	deep, honest := 0, 0
	var span int64
	for _, t := range tallies {
		for k, n := range t.reversed {
			reversed[k] += n
		}
		deep += t.deep
		honest += t.honest
		span += t.honestTicks
		res.DeadChains += t.dead
		res.AttackerBlocks += t.attacker
		res.Blocks += t.attacker + t.honest
	}
	rev := func(k, n int) Reversal {
		lo, hi := stats.Wilson(n, cfg.Rounds, stats.Z95)
		return Reversal{K: k, Reversed: n, Rounds: cfg.Rounds, Probability: float64(n) / float64(cfg.Rounds), Lo: lo, Hi: hi}
	}
	for k := 1; k <= cfg.Depth; k++ {
		res.Reversal = append(res.Reversal, rev(k, reversed[k]))
	}
	if cfg.Heartbeat {
		d := rev(cfg.MaxReorg, deep)
		res.Deep = &d
		if honest > cfg.Rounds {
			// Slots between two honest blocks after P, on average.
			res.HonestSlotsPerBlock = float64(span) / TicksPerSlot / float64(honest-cfg.Rounds)
		}
	}
	return nil
}

// TicksPerSlot is the model's clock resolution: the heartbeat interval,
// min gap and idle beat are whole ticks (a thousandth of a slot; 2 ms
// with the default slot_ms of 2000, docs/CONSENSUS.md).
const TicksPerSlot = 1000

// ticks converts slots to ticks, rounding to the nearest tick.
func ticks(slots float64) int64 { return int64(math.Round(slots * TicksPerSlot)) }

// privateRun holds one worker's buffers, reused from round to round.
type privateRun struct {
	honest, times []int64
	won           []bool
}

// round is one private attack's outcome.
type round struct {
	won  []bool // won[k]: a payment k deep was reversed (k = 1..Depth)
	deep bool   // a payment max_reorg deep was reversed (heartbeat on)
	dead bool   // the attacker's chain from P-1 ended: not elected within max_rank
	// raceAttacker and raceHonest are the blocks each side forged in the
	// race (until the honest chain is max_reorg+1 blocks above P-1), from
	// P-1; honestSpan is the ticks from P to the honest chain's last block.
	raceAttacker, raceHonest int
	honestSpan               int64
}

// timeline is the honest chain after the fork point, as the race rule
// sees it.
type timeline struct {
	// honest are the times at which the honest chain's blocks P, P+1, ...
	// are forged: max_reorg+1 of them with the heartbeat, Depth without
	// (the traffic that brings the payment Depth deep).
	honest []int64
	// back is how many honest blocks the attacker's chain must replace
	// below P: the beats between its fork point and P-1 (0: it forks
	// from P-1).
	back      int
	tieWin    bool // the attacker's block at P has the lower rank (back 0)
	heartbeat bool
}

// honestBlocks is how many blocks of the honest chain above the fork point
// exist at time t, when the merchant waits for k confirmations.
func (o *timeline) honestBlocks(t int64, k int) int {
	n := 0
	for n < len(o.honest) && o.honest[n] <= t {
		n++
	}
	if !o.heartbeat {
		n = min(n, k)
	}
	return o.back + n
}

// reversed reports whether the attacker, whose blocks above its fork
// point are ready at times, reverses a payment k deep.
func (o *timeline) reversed(k int, times []int64, maxReorg int) bool {
	if k > len(o.honest) {
		return false
	}
	accept := o.honest[k-1] // the merchant's k-th confirmation
	beats := func(t int64) bool {
		na := 0
		for na < len(times) && times[na] <= t {
			na++
		}
		nh := o.honestBlocks(t, k)
		if nh > maxReorg { // the reorg would be too deep: never again
			return false
		}
		return na > nh || (na == nh && na > 0 && o.back == 0 && o.tieWin)
	}
	if beats(accept) {
		return true
	}
	for _, t := range times {
		if t > accept && beats(t) {
			return true
		}
	}
	return false
}

// privateRound plays round r.
func (m *model) privateRound(r int, pr *privateRun) round {
	cfg := m.cfg
	h := sha256.New()
	h.Write([]byte("posd/lab/payment\x00"))
	h.Write(m.salt)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(r))
	h.Write(n[:])
	var parent seed // seed of P-1
	h.Sum(parent[:0])
	const height = 1 << 20 // P's height: any; it only enters the seeds

	ranking := m.rank(parent)
	rh, ra := firstHonest(ranking), slices.Index(ranking, attackerKey)
	gap, beat := ticks(float64(cfg.IdleGap)), ticks(cfg.IdleBeat)
	forkAt := -gap // P-1's time
	beats := 0     // beats before P-1 the attacker may fork from instead
	if beat > 0 && gap > beat {
		// The rest began at -gap; a beat every `beat` ticks since, the
		// last one (P-1) less than a beat before the payment.
		n := (gap - 1) / beat
		forkAt = -gap + n*beat
		beats = int(min(n, int64(cfg.MaxReorg-1)))
	}
	pr.honest = m.honestTimeline(parent, ranking, height, forkAt, pr.honest[:0])
	o := timeline{honest: pr.honest, heartbeat: cfg.Heartbeat, tieWin: ra >= 0 && ra < rh}
	var out round
	out.won = pr.won[:0]
	for range cfg.Depth + 1 {
		out.won = append(out.won, false)
	}
	pr.won = out.won
	window := o.honest[len(o.honest)-1]
	out.raceHonest = len(o.honest)
	out.honestSpan = window - o.honest[0]

	left := cfg.Depth // payments k deep not reversed yet
	deepDone := !cfg.Heartbeat
	for j := 0; j <= beats && (left > 0 || !deepDone); j++ {
		start, s, rank := forkAt-int64(j)*beat, parent, ra
		if j > 0 {
			// The j-th beat below P-1: a seed of its own.
			s = m.beatSeed(r, j)
			rank = m.attackerRank(s)
		}
		o.back = j
		var died bool
		pr.times, died = m.attackerChain(s, rank, start, window, height, pr.times[:0])
		if j == 0 {
			out.dead = died
			for _, t := range pr.times {
				if t <= window {
					out.raceAttacker++
				}
			}
		}
		for k := 1; k <= cfg.Depth; k++ {
			if !out.won[k] && o.reversed(k, pr.times, cfg.MaxReorg) {
				out.won[k] = true
				left--
			}
		}
		if !deepDone {
			// Only a fork from P-1 can reach a payment max_reorg deep: from
			// a beat below it the reorg would be deeper.
			out.deep, deepDone = o.reversed(cfg.MaxReorg, pr.times, cfg.MaxReorg), true
		}
	}
	return out
}

// beatSeed models the seed of the j-th idle beat below P-1 in round r.
func (m *model) beatSeed(r, j int) seed {
	var s seed
	binary.BigEndian.PutUint64(s[:8], uint64(r))
	binary.BigEndian.PutUint64(s[8:16], uint64(j))
	return m.hash("posd/lab/beat", "", s, 0, 0)
}

// attackerChain appends to times when the attacker's private blocks above
// a fork point forged at start (seed s; rank, its rank in the election on
// s) are ready: block i at rank r_i, (r_i + MinGap) slots after block i-1.
// It stops when a block could no longer matter (after window, the honest
// chain's last block, or beyond max_reorg+1 blocks) and reports whether
// the chain died (the attacker not elected within max_rank).
func (m *model) attackerChain(s seed, rank int, start, window int64, height uint64, times []int64) ([]int64, bool) {
	cfg := m.cfg
	t, g := start, ticks(cfg.MinGap)
	for i := 0; ; i++ {
		if rank < 0 {
			return times, true
		}
		t += int64(rank)*TicksPerSlot + g
		more := t <= window && i <= cfg.MaxReorg+1 // can still matter with the heartbeat
		if !cfg.Heartbeat {
			more = more || i <= cfg.Depth // the idle chain waits for ever
		}
		if !more {
			return times, false
		}
		times = append(times, t)
		s, rank = m.grindSeed(s, height+uint64(i))
	}
}

// firstHonest is the rank of the first honest candidate (-1: none).
func firstHonest(ranking []string) int {
	return slices.IndexFunc(ranking, func(c string) bool { return c != attackerKey })
}

// honestTimeline appends when the honest chain forges blocks P, P+1, ...
// on P-1 (forged at time parentAt; seed parent, election ranking): the
// first honest candidate of each election forges as soon as the rules let
// it, and with the heartbeat no sooner than HeartbeatInterval slots after
// its parent (rank 0) or its rank's wait (rank r > 0); without it, the
// traffic brings a block a slot. Block P waits for nothing but the rules:
// the payment is there at time 0.
func (m *model) honestTimeline(parent seed, ranking []string, height uint64, parentAt int64, times []int64) []int64 {
	cfg := m.cfg
	n := cfg.MaxReorg + 1
	if !cfg.Heartbeat {
		n = cfg.Depth
	}
	g, f := ticks(cfg.MinGap), ticks(cfg.HeartbeatInterval)
	if !cfg.Heartbeat {
		f = TicksPerSlot // the traffic: a block a slot
	}
	rh := firstHonest(ranking)
	t := max(0, parentAt+int64(rh)*TicksPerSlot+g)
	times = append(times, t)
	// With one-slot beats and no min gap, rh (0 or 1: the attacker holds
	// one rank) makes no difference: the slot the heartbeat waits covers
	// it, and the elections need not run.
	simple := g == 0 && f == TicksPerSlot
	for j := 1; j < n; j++ {
		if simple {
			t += TicksPerSlot
		} else {
			forger := ranking[rh]
			parent = m.honestSeed(forger, parent, height+uint64(j-1))
			ranking = m.rank(parent)
			rh = firstHonest(ranking)
			wait := int64(rh)*TicksPerSlot + g
			if rh == 0 {
				wait = max(f, g)
			}
			t += wait
		}
		times = append(times, t)
	}
	return times
}
