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
//
// With Finality (the v3 rules) the fork choice first refuses a private chain
// without the honest chain's latest final block, then prefers the branch
// with the higher justified checkpoint, and only then applies v2's rule
// (finality.go counts the votes). The honest timeline is v2's: heartbeat
// v3 rests once P is final, which changes no outcome (a final P cannot be
// reversed), and beats on while finality stalls, as v2's does until P is
// max_reorg deep.
func (m *model) private(ctx context.Context, res *Result) error {
	cfg := m.cfg
	prog := &progress{f: cfg.Progress, total: cfg.Rounds}
	type tally struct {
		// by k: reversed; reversed while final; final at acceptance
		reversed, finalReversed, final []int
		deep, deepFinal, dead          int
		attacker, honest               int
		honestTicks                    int64
	}
	// Finality depends on the stake split and the chain's shape, not on
	// the round: counted once.
	forks, _, _ := m.idleBeats()
	honestBlocks := cfg.MaxReorg + 1
	if !cfg.Heartbeat {
		honestBlocks = cfg.Depth
	}
	fin := m.finalityTables(forks, honestBlocks, cfg.MaxReorg+2)
	tallies := make([]tally, cfg.Workers)
	var wg sync.WaitGroup
	errs := make([]error, cfg.Workers)
	for w := range cfg.Workers {
		tallies[w].reversed = make([]int, cfg.Depth+1)
		tallies[w].finalReversed = make([]int, cfg.Depth+1)
		tallies[w].final = make([]int, cfg.Depth+1)
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
				out := m.privateRound(r, fin, &pr)
				for k := 1; k <= cfg.Depth; k++ {
					if out.won[k] {
						t.reversed[k]++
					}
					if out.wonFinal[k] {
						t.finalReversed[k]++
					}
					if out.final[k] {
						t.final[k]++
					}
				}
				if out.deep {
					t.deep++
				}
				if out.deepFinal {
					t.deepFinal++
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
	finalReversed := make([]int, cfg.Depth+1)
	final := make([]int, cfg.Depth+1)
	deep, deepFinal, honest := 0, 0, 0
	var span int64
	for _, t := range tallies {
		for k := range reversed {
			reversed[k] += t.reversed[k]
			finalReversed[k] += t.finalReversed[k]
			final[k] += t.final[k]
		}
		deep += t.deep
		deepFinal += t.deepFinal
		honest += t.honest
		span += t.honestTicks
		res.DeadChains += t.dead
		res.AttackerBlocks += t.attacker
		res.Blocks += t.attacker + t.honest
	}
	rev := func(k, n, nFinal, final int) Reversal {
		p := func(n int) float64 { return float64(n) / float64(cfg.Rounds) }
		lo, hi := stats.Wilson(n, cfg.Rounds, stats.Z95)
		return Reversal{K: k, Reversed: n, Rounds: cfg.Rounds, Probability: p(n), Lo: lo, Hi: hi,
			Final: final, FinalReversed: nFinal, NotFinalReversed: n - nFinal,
			FinalProbability: p(nFinal), NotFinalProbability: p(n - nFinal)}
	}
	for k := 1; k <= cfg.Depth; k++ {
		res.Reversal = append(res.Reversal, rev(k, reversed[k], finalReversed[k], final[k]))
	}
	res.HonestVoteShare = fin.honestShare
	res.FinalDepth = fin.finalDepth
	res.FinalityStalled = fin.stalled()
	if cfg.Heartbeat {
		deepIsFinal := 0
		if fin.honestFinal(cfg.MaxReorg) {
			deepIsFinal = cfg.Rounds
		}
		d := rev(cfg.MaxReorg, deep, deepFinal, deepIsFinal)
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
	honest, times        []int64
	won, wonFinal, final []bool
}

// round is one private attack's outcome.
type round struct {
	won []bool // won[k]: a payment k deep was reversed (k = 1..Depth)
	// wonFinal[k]: it was, and P was final when the attacker published;
	// final[k]: P was final when the merchant accepted it k deep.
	wonFinal, final []bool
	deep            bool // a payment max_reorg deep was reversed (heartbeat on)
	deepFinal       bool // and P was final when the attacker published
	dead            bool // the attacker's chain from P-1 ended: not elected within max_rank
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
	// fin, if set, is finality in this run: it says whether P is final
	// when the attacker publishes, and with finality it also decides the
	// fork choice before v2's rule does.
	fin      *finTables
	finality bool
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
	won, _ := o.race(k, times, maxReorg)
	return won
}

// race reports whether the attacker, whose blocks above its fork point are
// ready at times, reverses a payment k deep, and if so whether P was final
// on the honest chain when it published (with finality off: whether the
// votes would have made it final; v2's fork choice ignores them).
func (o *timeline) race(k int, times []int64, maxReorg int) (won, final bool) {
	if k > len(o.honest) {
		return false, false
	}
	accept := o.honest[k-1] // the merchant's k-th confirmation
	beats := func(t int64) (bool, bool) {
		na := 0
		for na < len(times) && times[na] <= t {
			na++
		}
		nh := o.honestBlocks(t, k)
		if nh > maxReorg { // the reorg would be too deep: never again
			return false, false
		}
		final := o.fin != nil && o.fin.honestFinal(nh-o.back)
		if o.finality && na > 0 {
			if wins, decided := o.fin.prefers(o.back, na, nh-o.back); decided {
				return wins, final
			}
		}
		return na > nh || (na == nh && na > 0 && o.back == 0 && o.tieWin), final
	}
	if won, final := beats(accept); won {
		return true, final
	}
	for _, t := range times {
		if t > accept {
			if won, final := beats(t); won {
				return true, final
			}
		}
	}
	return false, false
}

// idleBeats says how the chain rested before the payment: the time of P-1
// (the fork point), the beats below it the attacker may fork from instead
// (0: none), and the ticks between two beats.
func (m *model) idleBeats() (beats int, forkAt, beat int64) {
	cfg := m.cfg
	gap := ticks(float64(cfg.IdleGap))
	beat = ticks(cfg.IdleBeat)
	forkAt = -gap // P-1's time
	if beat > 0 && gap > beat {
		// The rest began at -gap; a beat every `beat` ticks since, the
		// last one (P-1) less than a beat before the payment.
		n := (gap - 1) / beat
		forkAt = -gap + n*beat
		beats = int(min(n, int64(cfg.MaxReorg-1)))
	}
	return beats, forkAt, beat
}

// privateRound plays round r; fin is finality in this run.
func (m *model) privateRound(r int, fin *finTables, pr *privateRun) round {
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
	beats, forkAt, beat := m.idleBeats()
	pr.honest = m.honestTimeline(parent, ranking, height, forkAt, pr.honest[:0])
	o := timeline{honest: pr.honest, heartbeat: cfg.Heartbeat, tieWin: ra >= 0 && ra < rh, fin: fin, finality: cfg.Finality}
	var out round
	out.won, out.wonFinal, out.final = falses(pr.won, cfg.Depth+1), falses(pr.wonFinal, cfg.Depth+1), falses(pr.final, cfg.Depth+1)
	pr.won, pr.wonFinal, pr.final = out.won, out.wonFinal, out.final
	for k := 1; k <= cfg.Depth && k <= len(o.honest); k++ {
		out.final[k] = fin.honestFinal(o.honestBlocks(o.honest[k-1], k))
	}
	window := o.honest[len(o.honest)-1]
	out.raceHonest = len(o.honest)
	out.honestSpan = window - o.honest[0]

	left := cfg.Depth // payments k deep not reversed yet
	deepDone := !cfg.Heartbeat
	for j := 0; j <= beats && (left > 0 || !deepDone); j++ {
		if j > 0 && o.finality && fin.hopeless(j) {
			continue // no need to forge it
		}
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
			if out.won[k] {
				continue
			}
			// The first fork that wins is the one published: whether P
			// was final then is its outcome.
			if won, final := o.race(k, pr.times, cfg.MaxReorg); won {
				out.won[k], out.wonFinal[k] = true, final
				left--
			}
		}
		if !deepDone {
			// Only a fork from P-1 can reach a payment max_reorg deep: from
			// a beat below it the reorg would be deeper.
			out.deep, out.deepFinal = o.race(cfg.MaxReorg, pr.times, cfg.MaxReorg)
			deepDone = true
		}
	}
	return out
}

// falses is buf emptied and filled with n falses.
func falses(buf []bool, n int) []bool {
	buf = buf[:0]
	for range n {
		buf = append(buf, false)
	}
	return buf
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
