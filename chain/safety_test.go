package chain

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"testing"
)

// The accountable-safety property (the v3 rules, docs/CONSENSUS.md): over
// random forks and random schedules of honest and byzantine voters, built
// as real blocks applied by State.Apply,
//
//   - whenever two conflicting checkpoints are both final (on any two
//     branches), the voters with a slashable pair among all votes cast
//     (SlashableVotes) hold more than a third of the lots of a weight
//     table;
//   - so with less than a third of the lots byzantine, conflicting
//     finality never happens.
//
// Stakes are fixed here, so every weight table is the genesis one: the
// theorem as Casper FFG proves it. With stake that changes between
// sources the bound holds per table only (docs/CONSENSUS.md's caveat).

// simNode is one block of the simulated block tree and the state after it.
type simNode struct {
	h      Header
	hash   Hash
	parent *simNode
	state  *State
}

// ancestorOrSelf reports whether the checkpoint c is n's block or one of
// its ancestors.
func (n *simNode) has(c Checkpoint) bool {
	for x := n; x != nil; x = x.parent {
		if x.h.Height == c.Height {
			return x.hash == c.Hash
		}
		if x.h.Height < c.Height {
			return false
		}
	}
	return false
}

type simVoter struct {
	name      string
	addr      Address
	lots      uint64
	byzantine bool
	// the honest voter's memory: it signs a new vote only with a higher
	// target and a source no lower (docs/CONSENSUS.md, "The honest voter").
	lastSource, lastTarget uint64
	voted                  bool
}

type safetyTrial struct {
	rng    *rand.Rand
	g      *Genesis
	voters []*simVoter
	nodes  []*simNode
	tips   []*simNode
	byHash map[Hash]*simNode
	cast   []Vote
	seen   map[Hash]bool
	t      *testing.T
}

func newSafetyTrial(t *testing.T, seed uint64, byzShare float64) *safetyTrial {
	rng := rand.New(rand.NewPCG(seed, 0x5afe))
	g := DefaultGenesis()
	g.ChainID = testChainID
	g.Timestamp = 1_700_000_000_000
	g.EpochBlocks = 1 + rng.Uint64N(3)
	tr := &safetyTrial{rng: rng, g: g, byHash: map[Hash]*simNode{}, seen: map[Hash]bool{}, t: t}
	n := 4 + rng.IntN(4)
	for i := range n {
		v := &simVoter{name: fmt.Sprintf("voter-%d", i), lots: 1 + rng.Uint64N(10), byzantine: rng.Float64() < byzShare}
		v.addr = testAddr(v.name)
		tr.voters = append(tr.voters, v)
		g.Allocations = append(g.Allocations, Allocation{Address: v.addr, Stake: v.lots})
	}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	root := &simNode{h: g.Block().Header, state: g.State()}
	root.hash = root.h.Hash()
	tr.add(root)
	tr.tips = []*simNode{root}
	return tr
}

func (tr *safetyTrial) add(n *simNode) {
	tr.nodes = append(tr.nodes, n)
	tr.byHash[n.hash] = n
}

func (tr *safetyTrial) castVote(v *simVoter, source, target Checkpoint) {
	if target.Height <= source.Height {
		return
	}
	vt := vote(v.name, source, target)
	if id := vt.ID(testChainID); !tr.seen[id] {
		tr.seen[id] = true
		tr.cast = append(tr.cast, vt)
	}
}

// vote lets every voter vote once: honest ones for one branch they see,
// under their memory; byzantine ones for every branch, and now and then
// for a random link of a branch (surround votes among them).
func (tr *safetyTrial) vote() {
	for _, v := range tr.voters {
		if !v.byzantine {
			if tr.rng.IntN(4) == 0 {
				continue // a late or offline honest voter
			}
			f := tr.tips[tr.rng.IntN(len(tr.tips))].state.Finality()
			src, tgt := f.Justified, f.Latest()
			if tgt.Height > src.Height && (!v.voted || tgt.Height > v.lastTarget && src.Height >= v.lastSource) {
				tr.castVote(v, src, tgt)
				v.voted, v.lastSource, v.lastTarget = true, src.Height, tgt.Height
			}
			continue
		}
		for _, tip := range tr.tips {
			f := tip.state.Finality()
			tr.castVote(v, f.Justified, f.Latest())
			if tr.rng.IntN(3) == 0 {
				cps := f.Checkpoints()
				var srcs []Checkpoint
				for _, c := range cps {
					if c.Justified {
						srcs = append(srcs, c.Checkpoint)
					}
				}
				if len(srcs) > 0 {
					tr.castVote(v, srcs[tr.rng.IntN(len(srcs))], cps[tr.rng.IntN(len(cps))].Checkpoint)
				}
			}
		}
	}
}

// extend forges a block on parent carrying includable votes of the pool.
func (tr *safetyTrial) extend(parent *simNode) *simNode {
	h := parent.h.Height + 1
	var votes []Vote
	inBlock := map[linkKey]bool{}
	for _, i := range tr.rng.Perm(len(tr.cast)) {
		v := &tr.cast[i]
		k := linkKey{v.Voter(), v.Source, v.Target}
		if len(votes) < 64 && !inBlock[k] && parent.state.CheckVote(tr.g, v, h) == nil {
			votes = append(votes, *v)
			inBlock[k] = true
		}
	}
	b := &Block{Header: Header{Height: h, PrevHash: parent.hash, Timestamp: parent.h.Timestamp + 1 + tr.rng.Int64N(1000), TxRoot: MerkleRoot(nil)}}
	b.SetVotes(votes)
	st := parent.state.Clone()
	if _, err := st.Apply(b, tr.g); err != nil {
		tr.t.Fatalf("block %d with votes that CheckVote passed refused: %v", h, err)
	}
	n := &simNode{h: b.Header, hash: b.Hash(), parent: parent, state: st}
	tr.add(n)
	return n
}

// run grows up to three branches for steps blocks.
func (tr *safetyTrial) run(steps int) {
	for range steps {
		i := tr.rng.IntN(len(tr.tips))
		tip := tr.tips[i]
		if len(tr.tips) < 3 && tip.h.Height > 0 && tr.rng.IntN(8) == 0 {
			// A fork from a block up to 4 below the tip.
			base := tip
			for d := tr.rng.IntN(5); d > 0 && base.parent != nil; d-- {
				base = base.parent
			}
			tr.tips = append(tr.tips, tr.extend(base))
		} else {
			tr.tips[i] = tr.extend(tip)
		}
		tr.vote()
	}
}

// conflictingFinals returns two final checkpoints of different branches
// (neither an ancestor of the other), if any.
func (tr *safetyTrial) conflictingFinals() (Checkpoint, Checkpoint, bool) {
	finals := map[Checkpoint]bool{}
	for _, n := range tr.nodes {
		finals[n.state.Finality().Finalized] = true
	}
	var list []Checkpoint
	for c := range finals {
		list = append(list, c)
	}
	for i, a := range list {
		for _, b := range list[i+1:] {
			lo, hi := a, b
			if lo.Height > hi.Height {
				lo, hi = hi, lo
			}
			if !tr.byHash[hi.Hash].has(lo) {
				return a, b, true
			}
		}
	}
	return Checkpoint{}, Checkpoint{}, false
}

// slashableLots is the lots of the voters with a slashable pair among
// the votes cast.
func (tr *safetyTrial) slashableLots() uint64 {
	byVoter := map[Address][]*Vote{}
	for i := range tr.cast {
		v := &tr.cast[i]
		byVoter[v.Voter()] = append(byVoter[v.Voter()], v)
	}
	var lots uint64
	for _, v := range tr.voters {
		vs := byVoter[v.addr]
		found := false
		for i := 0; i < len(vs) && !found; i++ {
			for j := i + 1; j < len(vs) && !found; j++ {
				_, found = SlashableVotes(vs[i], vs[j])
			}
		}
		if found {
			if !v.byzantine {
				tr.t.Fatalf("honest voter %s signed a slashable pair", v.name)
			}
			lots += v.lots
		}
	}
	return lots
}

func TestAccountableSafety(t *testing.T) {
	trials := 120
	if testing.Short() {
		trials = 30
	}
	var conflicts, minorityTrials, finalizedForks int
	for seed := range uint64(trials) {
		// Half the trials with a byzantine minority, half with more.
		share := 0.15
		if seed%2 == 1 {
			share = 0.6
		}
		tr := newSafetyTrial(t, seed, share)
		tr.run(50)
		var total, byz uint64
		for _, v := range tr.voters {
			total += v.lots
			if v.byzantine {
				byz += v.lots
			}
		}
		table, _ := tr.nodes[0].state.Finality().Weights(tr.nodes[0].state.Finality().Finalized)
		if table.Total() != total {
			t.Fatalf("genesis table holds %d lots, voters %d", table.Total(), total)
		}
		if 3*byz < total {
			minorityTrials++
		}
		if len(tr.tips) > 1 {
			for _, tip := range tr.tips {
				if tip.state.Finality().Finalized.Height > 0 {
					finalizedForks++
				}
			}
		}
		a, b, bad := tr.conflictingFinals()
		slash := tr.slashableLots()
		if !bad {
			continue
		}
		conflicts++
		if 3*byz < total {
			t.Fatalf("seed %d: conflicting finals %s and %s with %d of %d lots byzantine (less than a third)", seed, a, b, byz, total)
		}
		if 3*slash <= total {
			t.Fatalf("seed %d: conflicting finals %s and %s, but slashable voters hold only %d of %d lots", seed, a, b, slash, total)
		}
	}
	t.Logf("%d trials: %d with conflicting finality (all covered by slashable votes), %d with a byzantine minority, %d finalizing tips of forked trees", trials, conflicts, minorityTrials, finalizedForks)
	// The property must be exercised: some majority trials do finalize
	// conflicting checkpoints, and forked minority trials finalize at all.
	if conflicts == 0 || minorityTrials == 0 || finalizedForks == 0 {
		t.Fatalf("the schedules never exercised the property: %d conflicts, %d minority trials, %d finalizing forked tips", conflicts, minorityTrials, finalizedForks)
	}
}

// BenchmarkApplyVotes: the finality step of Apply for a block carrying
// one vote of each of n stakers (the record kept for 64 heights, its
// encoding for the undo included), signatures apart.
func BenchmarkApplyVotes100(b *testing.B)  { benchApplyVotes(b, 100) }
func BenchmarkApplyVotes1000(b *testing.B) { benchApplyVotes(b, 1000) }

func benchApplyVotes(b *testing.B, n int) {
	g := DefaultGenesis()
	g.ChainID = testChainID
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("staker-%d", i))
		g.Allocations = append(g.Allocations, Allocation{Address: testAddr(names[i]), Stake: 10})
	}
	st := g.State()
	parent := g.Block().Header
	var blocks []*Block
	// 70 blocks, each carrying everyone's vote for the newest link.
	for h := uint64(1); h <= 70; h++ {
		blk := &Block{Header: Header{Height: h, PrevHash: parent.Hash(), Timestamp: int64(h), TxRoot: MerkleRoot(nil)}}
		if h > 1 {
			f := st.Finality()
			vs := make([]Vote, n)
			for i, name := range names {
				vs[i] = Vote{Source: f.Justified, Target: f.Latest()}
				copy(vs[i].PublicKey[:], testKey(name).Public().(ed25519.PublicKey))
			}
			blk.SetVotes(vs)
		}
		if _, err := st.Apply(blk, g); err != nil {
			b.Fatal(err)
		}
		blocks = append(blocks, blk)
		parent = blk.Header
	}
	// Re-apply the last block on the state before it.
	last := blocks[len(blocks)-1]
	u, _ := st.Apply(&Block{Header: Header{Height: 71, PrevHash: last.Hash()}}, g)
	st.Revert(u)
	before := st.Clone()
	blk := &Block{Header: Header{Height: 71, PrevHash: last.Hash(), TxRoot: MerkleRoot(nil)}}
	f := st.Finality()
	vs := make([]Vote, n)
	for i, name := range names {
		vs[i] = Vote{Source: f.Justified, Target: f.Latest()}
		copy(vs[i].PublicKey[:], testKey(name).Public().(ed25519.PublicKey))
	}
	blk.SetVotes(vs)
	b.ResetTimer()
	for range b.N {
		s := before.Clone()
		if _, err := s.Apply(blk, g); err != nil {
			b.Fatal(err)
		}
	}
	enc, _ := before.Finality().MarshalBinary()
	b.ReportMetric(float64(len(enc)), "record-bytes")
}
