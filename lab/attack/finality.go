package attack

import "slices"

// The finality gadget of the v3 rules (docs/CONSENSUS.md), as the private
// attack meets it.
//
// Every block is a checkpoint (epoch_blocks 1), named here by its height
// on the branch at hand; the model's anchor, height 0, stands for genesis:
// justified and final. A staker votes {source, target} for each new head
// on its branch: target = the head, source = the highest justified
// checkpoint on the head's branch. The next block on that branch includes
// the vote if its target and source are on the branch, the source is
// justified there and the same voter's vote for that link is not on the
// branch yet. A target is justified when the included votes for a link
// from a justified source weigh more than 2/3 of all lots (the lots at the
// source: the stake is static in the model, so one table serves every
// source); a justified s is final when the link s→s+1 is justified.
//
// Who votes for what: honest stakers vote for every honest block as it
// arrives (messages arrive at once); the attacker votes for no honest
// block (it wants them not final) and for each block of its private
// chain, whose votes, like the chain, are secret until it publishes:
// only its own blocks carry them. Its first private block carries the
// honest votes for the fork point too (they were gossiped, and the honest
// block that included them is not on its branch), which is the most its
// branch can borrow from the honest stakers. Since every honest node sees
// the same blocks, the honest chain's finality depends only on how many
// blocks it has, and the private chain's only on its fork point and
// length: both are computed once per run (finTables) by counting votes
// block by block, not assumed.

// ffgVote is one finality vote on a linear branch, checkpoints by height.
type ffgVote struct {
	voter          int
	source, target int
}

// ffgLink is a source→target link.
type ffgLink struct{ source, target int }

// ffgBranch is the finality record of one linear branch from the anchor,
// grown block by block from the votes the blocks carry.
type ffgBranch struct {
	lots      []uint64 // by voter
	total     uint64
	height    int    // of the newest block; 0: the anchor alone
	justified []bool // by height
	supermaj  map[ffgLink]bool
	weight    map[ffgLink]uint64
	included  map[ffgVote]bool
	// J and F are the highest justified and the highest final heights.
	J, F int
}

func newFFGBranch(lots []uint64) *ffgBranch {
	b := &ffgBranch{lots: lots, justified: []bool{true},
		supermaj: map[ffgLink]bool{}, weight: map[ffgLink]uint64{}, included: map[ffgVote]bool{}}
	for _, l := range lots {
		b.total += l
	}
	return b
}

// includable reports whether a block on top of b may carry v (the v3 rules:
// target and source on the branch, source justified there, source below
// target, the voter's vote for that link not already on the branch).
func (b *ffgBranch) includable(v ffgVote) bool {
	return v.voter >= 0 && v.voter < len(b.lots) &&
		v.source >= 0 && v.source < v.target && v.target <= b.height &&
		b.justified[v.source] && !b.included[v]
}

// add appends a block to the branch carrying votes; votes it may not
// carry are left out, as a forger leaves them out.
func (b *ffgBranch) add(votes []ffgVote) {
	// Checked against the parent's branch: a block carries votes for
	// checkpoints below it (cast once those existed), never for itself.
	keep := votes[:0:0]
	for _, v := range votes {
		if b.includable(v) {
			keep = append(keep, v)
		}
	}
	b.height++
	b.justified = append(b.justified, false)
	for _, v := range keep {
		if b.included[v] || !b.justified[v.source] {
			continue // a duplicate in this block
		}
		b.included[v] = true
		l := ffgLink{v.source, v.target}
		b.weight[l] += b.lots[v.voter]
		// More than 2/3 of the lots at the source, in integers.
		if b.supermaj[l] || 3*b.weight[l] <= 2*b.total {
			continue
		}
		b.supermaj[l] = true
		b.justified[v.target] = true
		b.J = max(b.J, v.target)
		if v.target == v.source+1 {
			b.F = max(b.F, v.source) // everything below is final too
		}
	}
}

// votesFor are the votes voters cast for the branch's newest block as
// their head: source the highest justified checkpoint on it.
func (b *ffgBranch) votesFor(voters []int, into []ffgVote) []ffgVote {
	for _, v := range voters {
		into = append(into, ffgVote{voter: v, source: b.J, target: b.height})
	}
	return into
}

// finTables is finality in one run of the private attack. Heights are
// counted from the anchor; P-1, the payment's parent, is at prefix.
type finTables struct {
	prefix int
	// honestJ[n] and honestF[n] are the honest chain's highest justified
	// and final heights when it has n blocks above P-1 (P is the first).
	honestJ, honestF []int
	// attackJ[j][n] is the private chain's highest justified height when
	// it forks j blocks below P-1 (at prefix-j) and has n blocks.
	attackJ [][]int
	// honestShare is the honest stakers' share of the lots: the votes the
	// honest chain gets.
	honestShare float64
	// finalDepth is the confirmations at which P is final on the honest
	// chain (P and finalDepth-1 blocks on it); 0: never, finality stalls.
	finalDepth int
}

// finalityTables counts the votes of an honest chain with honestBlocks
// blocks above P-1 and of private chains forked from P-1 and the forks
// blocks below it, each up to attackBlocks long.
func (m *model) finalityTables(forks, honestBlocks, attackBlocks int) *finTables {
	stakers := m.tab.Stakers()
	lots := make([]uint64, len(stakers))
	var honest, attacker []int
	var honestLots uint64
	for i, s := range stakers {
		lots[i] = m.tab.Stake(s)
		if s == attackerKey {
			attacker = append(attacker, i)
		} else {
			honest = append(honest, i)
			honestLots += lots[i]
		}
	}
	// The prefix: enough blocks below P-1 for every fork point and for the
	// chain to be in its steady state (two blocks) below the lowest.
	ft := &finTables{prefix: forks + 3, honestShare: float64(honestLots) / float64(m.tab.Total())}
	var pending []ffgVote
	grow := func(b *ffgBranch, voters []int) {
		b.add(pending)
		pending = b.votesFor(voters, pending[:0])
	}
	h := newFFGBranch(lots)
	for h.height < ft.prefix {
		grow(h, honest)
	}
	ft.honestJ, ft.honestF = append(ft.honestJ, h.J), append(ft.honestF, h.F)
	for n := 1; n <= honestBlocks; n++ {
		grow(h, honest)
		ft.honestJ, ft.honestF = append(ft.honestJ, h.J), append(ft.honestF, h.F)
		if ft.finalDepth == 0 && h.F >= ft.prefix+1 {
			ft.finalDepth = n
		}
	}
	for j := 0; j <= forks; j++ {
		a := newFFGBranch(lots)
		pending = pending[:0]
		for a.height < ft.prefix-j {
			grow(a, honest) // the shared blocks, up to the fork point
		}
		// pending: the honest votes for the fork point, which the first
		// private block carries. From there on only the attacker votes.
		row := []int{a.J}
		for range attackBlocks {
			grow(a, attacker)
			row = append(row, a.J)
		}
		ft.attackJ = append(ft.attackJ, row)
	}
	return ft
}

// honestFinal reports whether P is final on the honest chain with n blocks
// above P-1.
func (ft *finTables) honestFinal(n int) bool {
	return ft.honestF[min(n, len(ft.honestF)-1)] >= ft.prefix+1
}

// prefers applies rules (1) and (2) of the v3 fork choice to a private
// chain forked back blocks below P-1 with na blocks, against the honest
// chain with n blocks above P-1: it reports whether they decide (decided)
// and, if so, whether the private chain wins. Undecided: v2's rule.
func (ft *finTables) prefers(back, na, n int) (wins, decided bool) {
	n = min(n, len(ft.honestJ)-1)
	row := ft.attackJ[back]
	na = min(na, len(row)-1)
	fork := ft.prefix - back
	if ft.honestF[n] > fork {
		return false, true // (1) the private chain lacks the latest final block
	}
	if hj, aj := ft.honestJ[n], row[na]; aj != hj {
		return aj > hj, true // (2) the higher justified checkpoint
	}
	return false, false
}

// hopeless reports whether no private chain forked back blocks below P-1
// can win the v3 fork choice once P exists, however long it grows: the
// honest chain only gains justified and final checkpoints as it grows,
// the private chain at most those of its longest version.
func (ft *finTables) hopeless(back int) bool {
	wins, decided := ft.prefers(back, len(ft.attackJ[back])-1, 1)
	return decided && !wins
}

// stalled reports whether the honest chain finalises nothing above the
// anchor: its stake is not more than 2/3.
func (ft *finTables) stalled() bool {
	return !slices.ContainsFunc(ft.honestF, func(f int) bool { return f > 0 })
}
