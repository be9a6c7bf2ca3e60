package chain

import (
	"crypto/ed25519"
	"encoding/binary"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519/extra/ecvrf"

	"github.com/poslab/posd/chain/election"
)

// The election seed (the v2 rules, docs/CONSENSUS.md). Each block carries seed_proof, an
// ECVRF proof (RFC 9381, suite ECVRF-EDWARDS25519-SHA512-ELL2) made with
// the forger's Ed25519 key over
//
//	alpha = "posd/seed/v1" ‖ chain_id ‖ 0x00 ‖ parent seed (32 bytes) ‖ height (8 bytes big endian)
//
// and seed, the first 32 bytes of the proof's output. The election for the
// next block is seeded with hex(seed). A VRF output is unique for a key and
// an input, so the forger cannot choose its block's seed by varying the
// timestamp or the transactions, as it could with the block hash; it can
// only withhold the block (see docs/CONSENSUS.md).

const seedDomain = "posd/seed/v1"

// SeedProofSize is the size of an ECVRF proof in bytes (160 hex characters).
const SeedProofSize = ecvrf.ProofSize

// VRFProof is an ECVRF proof (a header's seed_proof); JSON and text carry
// its hex. The zero value is no proof (text "", as block 0 has): see
// PublicKey for the rules of the text.
type VRFProof [SeedProofSize]byte

// IsZero reports whether p is the zero value: no proof.
func (p VRFProof) IsZero() bool { return p == VRFProof{} }

// String returns the lowercase hex of p ("" for the zero value).
func (p VRFProof) String() string { return hexString(p[:]) }

// MarshalText encodes p as lowercase hex ("" for the zero value).
func (p VRFProof) MarshalText() ([]byte, error) { return appendHexText(nil, p[:]), nil }

// UnmarshalText decodes 160 lowercase hex characters, or "" (no proof).
// Anything else is a *RuleError bad_seed_proof.
func (p *VRFProof) UnmarshalText(b []byte) error {
	return unhexText(p[:], b, "seed_proof", ErrBadSeedProof)
}

// vrfInput is what a header being forged needs for its seed proof besides
// its own height.
type vrfInput struct {
	chainID    string
	parentSeed Hash
}

// SeedAlpha returns the VRF input of the block at height on a parent whose
// seed is parentSeed.
func SeedAlpha(chainID string, parentSeed Hash, height uint64) []byte {
	b := make([]byte, 0, len(seedDomain)+len(chainID)+1+32+8)
	b = append(b, seedDomain...)
	b = append(b, chainID...)
	b = append(b, 0)
	b = append(b, parentSeed[:]...)
	return binary.BigEndian.AppendUint64(b, height)
}

// ProveSeed fills seed_proof and seed for this header's height with priv,
// the forger's key, on a parent whose seed is parentSeed. Header.Sign does
// it for headers made by NewBlock.
func (h *Header) ProveSeed(priv ed25519.PrivateKey, chainID string, parentSeed Hash) {
	pi := ecvrf.Prove(voi.PrivateKey(priv), SeedAlpha(chainID, parentSeed, h.Height))
	beta, err := ecvrf.ProofToHash(pi)
	if err != nil {
		// Prove only makes decodable proofs; this cannot happen.
		panic(err)
	}
	copy(h.SeedProof[:], pi)
	copy(h.Seed[:], beta)
}

// checkSeed verifies h's seed proof under the forger key pub against the
// parent's seed, and that seed is the proof's output.
func checkSeed(g *Genesis, parent *Header, h *Header, pub ed25519.PublicKey) error {
	if h.SeedProof.IsZero() {
		return ruleErrorf(ErrBadSeedProof, "seed_proof is missing")
	}
	ok, beta := ecvrf.Verify(voi.PublicKey(pub), h.SeedProof[:], SeedAlpha(g.ChainID, parent.Seed, h.Height))
	if !ok {
		return ruleErrorf(ErrBadSeedProof, "seed_proof does not verify for the forger's key on the parent's seed")
	}
	if !equal32(beta, h.Seed) {
		return ruleErrorf(ErrBadSeed, "seed %s is not the proof's output", h.Seed)
	}
	return nil
}

func equal32(b []byte, h Hash) bool { return len(b) >= 32 && Hash(b[:32]) == h }

// ElectionSeed is the seed string of the election for the child of parent:
// hex(parent.seed) with seed_source vrf, hex(parent hash) with block_hash.
// For block 1 the parent is block 0, whose seed is the genesis hash.
func ElectionSeed(g *Genesis, parent *Header) string {
	if g.SeedSource == SeedBlockHash {
		return parent.Hash().String()
	}
	return parent.Seed.String()
}

// ElectionTable is the stake table elections run on: each staker's stake
// in whole lots of lot_size coins (remainders below a lot do not count, so
// splitting stake over accounts never gains lots). The lottery costs one
// hash per lot, and the total is bounded by max_lots. The table is cached
// in state; after blocks that change stakes it is updated from the changes
// (StakeTable.With, linear), not rebuilt. It is safe to call on a state
// others read, not on one being changed.
func ElectionTable(g *Genesis, state *State) *election.StakeTable {
	size := max(g.LotSize, 1)
	c := state.table.Load()
	if c != nil && c.lotSize == size {
		if c.applied == len(state.pending) {
			return c.t
		}
		changes := make([]election.Stake, 0, len(state.pending)-c.applied)
		for _, p := range state.pending[c.applied:] {
			changes = append(changes, election.Stake{Staker: p.Staker, Stake: p.Stake / size})
		}
		t := c.t.With(changes)
		state.table.Store(&lotTable{size, t, len(state.pending)})
		return t
	}
	lots := make([]election.Stake, 0, state.stakers.Len())
	state.stakers.each(func(a Address, stake uint64) bool {
		if stake >= size {
			lots = append(lots, election.Stake{Staker: string(a), Stake: stake / size})
		}
		return true
	})
	t, err := election.NewStakeTableFromList(lots)
	if err != nil {
		panic(err) // addresses are map keys: distinct
	}
	state.table.Store(&lotTable{size, t, len(state.pending)})
	return t
}
