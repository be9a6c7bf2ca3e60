package attack

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"

	"github.com/poslab/posd/lab/stats"
)

// The private attack, one round per payment.
//
// Time is in slots; the payment's parent block P-1 is forged at time
// -IdleGap and the payment reaches the network at time 0. The election on
// P-1's seed ranks the candidates for height P: the attacker, if rank 0,
// does not forge the payment (it wants it in a block of the chain it will
// replace), so the payment's block P is forged by the first honest
// candidate, of rank rh (0 or 1), at time max(0, rh - IdleGap).
//
// With MinGap g (0 in DESIGN v2) every block costs g more slots: rank k
// forges (k+g) slots after its parent.
//
// The honest chain then grows:
//   - heartbeat on: one block per slot (the rightful forger forges an empty
//     block when the head is a slot old; if the attacker holds rank 0, rank
//     1 may forge at that moment too) until P is max_reorg blocks deep, then
//     it rests;
//   - heartbeat off: an idle chain does not grow. For the merchant to see k
//     confirmations, k-1 blocks of other traffic follow P, one per slot;
//     then the chain rests.
//
// The attacker forks from P-1 and forges only where it is elected: at
// height P+i, at its rank r_i in the election on its own parent's seed,
// r_i slots after its parent (so at time -IdleGap + r_0 + ... + r_i); when it
// is not among the max_rank candidates its chain ends (with vrf its seed is
// fixed, so it cannot retry). It publishes at the first moment after the
// merchant's k-th confirmation at which the fork choice prefers its chain
// (higher; at equal height, lower rank at height P) and the reorg is at
// most max_reorg blocks; that reverses the payment. Blocks made at the
// same moment count for the honest chain first.
func (m *model) private(ctx context.Context, res *Result) error {
	cfg := m.cfg
	prog := &progress{f: cfg.Progress, total: cfg.Rounds}
	type tally struct {
		reversed               []int
		dead, attacker, honest int
	}
	tallies := make([]tally, cfg.Workers)
	var wg sync.WaitGroup
	errs := make([]error, cfg.Workers)
	for w := range cfg.Workers {
		tallies[w].reversed = make([]int, cfg.Depth+1)
		wg.Go(func() {
			t := &tallies[w]
			var times []int
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
				var out round
				times = m.privateRound(r, times[:0], &out)
				for k := 1; k <= cfg.Depth; k++ {
					if out.reversed(k, times, cfg) {
						t.reversed[k]++
					}
				}
				if out.dead {
					t.dead++
				}
				t.attacker += out.raceAttacker
				t.honest += out.raceHonest
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
	for _, t := range tallies {
		for k, n := range t.reversed {
			reversed[k] += n
		}
		res.DeadChains += t.dead
		res.AttackerBlocks += t.attacker
		res.Blocks += t.attacker + t.honest
	}
	for k := 1; k <= cfg.Depth; k++ {
		lo, hi := stats.Wilson(reversed[k], cfg.Rounds, stats.Z95)
		res.Reversal = append(res.Reversal, Reversal{
			K: k, Reversed: reversed[k], Rounds: cfg.Rounds,
			Probability: float64(reversed[k]) / float64(cfg.Rounds), Lo: lo, Hi: hi,
		})
	}
	return nil
}

// round is one private attack's timeline.
type round struct {
	// honest are the times at which the honest chain's blocks P, P+1, ...
	// are forged: max_reorg+1 of them with the heartbeat, Depth without
	// (the traffic that brings the payment Depth deep).
	honest    []int
	tieWin    bool // the attacker's block at P has the lower rank
	heartbeat bool
	dead      bool // the attacker's chain ended: not elected within max_rank
	// raceAttacker and raceHonest are the blocks each side forged in the
	// race window, max_reorg slots from P.
	raceAttacker, raceHonest int
}

// honestBlocks is how many blocks of the honest chain above P-1 exist at
// time t, when the merchant waits for k confirmations.
func (o *round) honestBlocks(t, k int) int {
	n := 0
	for n < len(o.honest) && o.honest[n] <= t {
		n++
	}
	if !o.heartbeat {
		n = min(n, k)
	}
	return n
}

// reversed reports whether the attacker, whose blocks at heights P, P+1,
// ... are ready at times, reverses a payment k deep.
func (o *round) reversed(k int, times []int, cfg Config) bool {
	accept := o.honest[k-1] // the merchant's k-th confirmation
	beats := func(t int) bool {
		na := 0
		for na < len(times) && times[na] <= t {
			na++
		}
		nh := o.honestBlocks(t, k)
		if nh > cfg.MaxReorg { // the reorg would be too deep: never again
			return false
		}
		return na > nh || (na == nh && na > 0 && o.tieWin)
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

// privateRound plays round r: it fills o and returns the times at which the
// attacker's private blocks are ready (appended to times).
func (m *model) privateRound(r int, times []int, o *round) []int {
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
	o.heartbeat = cfg.Heartbeat
	o.tieWin = ra >= 0 && ra < rh
	o.honest = m.honestTimeline(parent, ranking, height, o.honest[:0])
	window := o.honest[0] + cfg.MaxReorg

	// The attacker's chain: block P+i at rank r_i, r_i (+ MinGap) slots
	// after P+i-1.
	t := -cfg.IdleGap
	rank := ra
	for i := 0; ; i++ {
		if rank < 0 {
			o.dead = true
			break
		}
		t += rank + cfg.MinGap
		more := t <= window && i <= cfg.MaxReorg+1 // can still matter with the heartbeat
		if !cfg.Heartbeat {
			more = more || i <= cfg.Depth // the idle chain waits for ever
		}
		if !more {
			break
		}
		times = append(times, t)
		if t <= window {
			o.raceAttacker++
		}
		var next seed
		next, rank = m.grindSeed(parent, height+uint64(i))
		parent = next
	}
	o.raceHonest = len(o.honest)
	return times
}

// firstHonest is the rank of the first honest candidate (-1: none).
func firstHonest(ranking []string) int {
	return slices.IndexFunc(ranking, func(c string) bool { return c != attackerKey })
}

// honestTimeline returns when the honest chain forges blocks P, P+1, ...
// on P-1 (seed parent, election ranking): the first honest candidate of
// each election forges as soon as the rules let it, and with the
// heartbeat (or the traffic) no sooner than a slot after its parent.
// Block P waits for nothing but the rules: the payment is there.
func (m *model) honestTimeline(parent seed, ranking []string, height uint64, times []int) []int {
	cfg := m.cfg
	n := cfg.MaxReorg + 1
	if !cfg.Heartbeat {
		n = cfg.Depth
	}
	rh := firstHonest(ranking)
	t := max(0, rh+cfg.MinGap-cfg.IdleGap)
	times = append(times, t)
	for j := 1; j < n; j++ {
		if cfg.MinGap == 0 {
			// rh is 0 or 1 (the attacker holds one rank): the slot the
			// heartbeat waits covers it; no need to run the elections.
			t++
		} else {
			forger := ranking[rh]
			parent = m.honestSeed(forger, parent, height+uint64(j-1))
			ranking = m.rank(parent)
			rh = firstHonest(ranking)
			t += max(1, rh+cfg.MinGap)
		}
		times = append(times, t)
	}
	return times
}
