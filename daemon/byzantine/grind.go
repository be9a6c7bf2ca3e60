package byzantine

import (
	"github.com/poslab/posd/chain"
)

// DefaultGrindVariants is how many versions of a block grind tries.
const DefaultGrindVariants = 400

// grind, under seed_source block_hash, tries timestamps (one millisecond
// apart, never past what peers' clocks accept) for a block whose hash
// elects this node at rank 0 next. Under vrf the hash seeds nothing and
// every version elects the same forger: grinding gains nothing, which is
// the point of the VRF seed.
type grind struct {
	base
	variants int
}

func (*grind) Name() string { return "grind" }

func (g *grind) Build(b *chain.Block, parent *chain.Block, state *chain.State) *chain.Block {
	out, tries, ok := Grind(g.env.Genesis, b, g.env.Sign, state, g.variants, g.env.Now().UnixMilli()+chain.MaxFutureMs-100)
	if ok {
		g.env.Log.Warn("BYZANTINE grind: found a block that elects us next", "height", b.Height, "tries", tries)
	} else {
		g.env.Log.Warn("BYZANTINE grind: no version elects us next", "height", b.Height, "tries", tries)
	}
	return out
}

// Grind tries versions of the unsigned block b (timestamps b.Timestamp,
// +1 ms, ... up to maxTs, at most variants) until one elects its own
// forger at rank 0 for the next height, on the stake table of state.
// sign signs a header with the forger's key; Grind signs only once, with
// the version it keeps (the hash does not cover the signature, and the
// seed proof does not depend on the timestamp). It returns that block
// signed, the versions tried and whether one elected the forger.
func Grind(g *chain.Genesis, b *chain.Block, sign func(h *chain.Header), state *chain.State, variants int, maxTs int64) (*chain.Block, int, bool) {
	alg, err := g.Algorithm()
	if err != nil {
		return b, 0, false
	}
	// Sign once to learn the forger and make the seed proof; the versions
	// below keep both, and only the last is signed again.
	probe := *b
	sign(&probe.Header)
	me := probe.Forger
	table := chain.ElectionTable(g, state)
	start := probe.Timestamp
	tries := 0
	for ts := start; tries < max(variants, 1) && (ts <= maxTs || tries == 0); ts++ {
		tries++
		probe.Timestamp = ts
		cands := chain.ElectWith(alg, 1, chain.ElectionSeed(g, &probe.Header), table)
		if len(cands) > 0 && cands[0] == me {
			sign(&probe.Header)
			return &probe, tries, true
		}
	}
	probe.Timestamp = start
	sign(&probe.Header)
	return &probe, tries, false
}
