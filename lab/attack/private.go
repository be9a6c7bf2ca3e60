package attack

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
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
			done := 0
			for r := w; r < cfg.Rounds; r += cfg.Workers {
				if done%progressEvery == 0 {
					if err := ctx.Err(); err != nil {
						errs[w] = err
						return
					}
					if done > 0 {
						prog.add(progressEvery)
					}
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
			prog.add(done % progressEvery)
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
	tP        int  // when the honest chain forges the payment's block P
	tieWin    bool // the attacker's block at P has the lower rank
	heartbeat bool
	dead      bool // the attacker's chain ended: not elected within max_rank
	// raceAttacker and raceHonest are the blocks each side forged in the
	// race window, max_reorg slots from P.
	raceAttacker, raceHonest int
}

// honestBlocks is how many blocks of the honest chain above P-1 exist at
// time t, when the merchant waits for k confirmations.
func (o *round) honestBlocks(t, k int, cfg Config) int {
	if t < o.tP {
		return 0
	}
	n := t - o.tP + 1
	if o.heartbeat {
		return min(n, cfg.MaxReorg+1)
	}
	return min(n, k)
}

// reversed reports whether the attacker, whose blocks at heights P, P+1,
// ... are ready at times, reverses a payment k deep.
func (o *round) reversed(k int, times []int, cfg Config) bool {
	accept := o.tP + k - 1 // the merchant's k-th confirmation
	beats := func(t int) bool {
		na := 0
		for na < len(times) && times[na] <= t {
			na++
		}
		nh := o.honestBlocks(t, k, cfg)
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
	rh, ra := -1, -1
	for i, c := range ranking {
		if c == attackerKey {
			ra = i
		} else if rh < 0 {
			rh = i
		}
	}
	o.heartbeat = cfg.Heartbeat
	o.tP = max(0, rh-cfg.IdleGap)
	o.tieWin = ra >= 0 && ra < rh
	window := o.tP + cfg.MaxReorg

	// The attacker's chain: block P+i at rank r_i, r_i slots after P+i-1.
	t := -cfg.IdleGap
	rank := ra
	for i := 0; ; i++ {
		if rank < 0 {
			o.dead = true
			break
		}
		t += rank
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
	if cfg.Heartbeat {
		o.raceHonest = cfg.MaxReorg + 1
	} else {
		o.raceHonest = cfg.Depth
	}
	return times
}
