package chain

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519/extra/ecvrf"
)

// Equivocation evidence and slashing (DESIGN "v2 rules", the attack lab).
//
// A forger equivocates when it signs two different headers for one slot:
// the same height on the same parent. Evidence is the pair, with the
// parent's seed so that both seed proofs can be checked against this
// chain's id (a header of another network, however validly signed, is no
// evidence here). A block carries evidence up to MaxEvidenceAge heights
// below it; applying it burns the genesis slash_percent of the forger's
// stake and records the slashing in the state, so that one (forger,
// height) is slashed once on any branch, and a reorg reverts it with the
// block's undo record.
//
// Why "same parent" and not just "same height": an honest forger whose
// head is replaced by another branch may be elected again at a height it
// already forged, on the new parent, and rightly forge there. Only two
// blocks for one election (one parent) are a choice no honest node makes.
//
// Slashing is a policy of the state transition, not of the header: the
// burn is slash_percent of the stake at the moment the evidence is
// applied, before the block's transactions (an UNSTAKE in the same block
// cannot escape it), never taking the total stake below min_total_stake
// (the burn is cut to what the floor allows: the chain must keep a forger),
// and slash_percent 0 records the slashing and burns nothing.

// MaxEvidenceAge is how far below a block the evidence it carries may be:
// the reorg limit, beyond which no node could have the equivocating blocks
// as side blocks any more.
const MaxEvidenceAge = 64

// MaxBlockEvidence bounds the evidence one block carries (each item costs
// two signature and two VRF checks, and one record in the state).
const MaxBlockEvidence = 16

const evidenceDomain = "posd/evidence/v1\x00"

// slashPrefix marks the state records of slashings: "slash:" forger ":"
// height. It is not an address (addresses are 40 hex characters), so no
// account can collide with it; Accounts leaves these records out.
const slashPrefix = "slash:"

// Evidence is two headers signed by one forger for one slot. A is the one
// with the lower hash (NewEvidence orders them), so a pair has one
// encoding and one id.
type Evidence struct {
	// ParentSeed is the seed of the parent both headers name; their seed
	// proofs must verify over it and this chain's id.
	ParentSeed Hash   `json:"parent_seed"`
	A          Header `json:"a"`
	B          Header `json:"b"`
}

// NewEvidence pairs two headers, ordered by hash.
func NewEvidence(parentSeed Hash, x, y *Header) Evidence {
	a, b := *x, *y
	a.vrf, b.vrf = nil, nil
	ha, hb := a.Hash(), b.Hash()
	if strings.Compare(string(hb[:]), string(ha[:])) < 0 {
		a, b = b, a
	}
	return Evidence{ParentSeed: parentSeed, A: a, B: b}
}

// Height is the height at which the forger equivocated.
func (e *Evidence) Height() uint64 { return e.A.Height }

// Forger is the equivocator.
func (e *Evidence) Forger() Address { return e.A.Forger }

// ID is SHA-256 of the domain, the parent seed and both header hashes.
func (e *Evidence) ID() Hash {
	ha, hb := e.A.Hash(), e.B.Hash()
	buf := make([]byte, 0, len(evidenceDomain)+96)
	buf = append(buf, evidenceDomain...)
	buf = append(buf, e.ParentSeed[:]...)
	buf = append(buf, ha[:]...)
	buf = append(buf, hb[:]...)
	return sha256.Sum256(buf)
}

// EvidenceRoot commits a block's header to its evidence: the Merkle root
// (as TxRoot) of the evidence ids, and the zero hash for none, so a block
// without evidence has the same header bytes as before evidence existed.
func EvidenceRoot(ev []Evidence) Hash {
	if len(ev) == 0 {
		return Hash{}
	}
	ids := make([]Hash, len(ev))
	for i := range ev {
		ids[i] = ev[i].ID()
	}
	return MerkleRoot(ids)
}

// Check runs every rule evidence must meet on its own, for a block at
// blockHeight: the same height and parent, the same forger with its key,
// different hashes in order, both signatures and both seed proofs (over
// this chain's id and ParentSeed), and an age of at most MaxEvidenceAge.
func (e *Evidence) Check(g *Genesis, blockHeight uint64) error {
	a, b := &e.A, &e.B
	switch {
	case a.Height != b.Height:
		return ruleErrorf(ErrBadEvidence, "headers at heights %d and %d", a.Height, b.Height)
	case a.Height == 0:
		return ruleErrorf(ErrBadEvidence, "evidence at height 0 (genesis is not forged)")
	case a.Height >= blockHeight:
		return ruleErrorf(ErrBadEvidence, "evidence at height %d in a block at height %d: it must be older", a.Height, blockHeight)
	case blockHeight-a.Height > MaxEvidenceAge:
		return ruleErrorf(ErrEvidenceTooOld, "evidence at height %d is %d heights below the block (limit %d)", a.Height, blockHeight-a.Height, MaxEvidenceAge)
	case a.PrevHash != b.PrevHash:
		return ruleErrorf(ErrBadEvidence, "headers on different parents (%s, %s): not one slot", a.PrevHash, b.PrevHash)
	case a.Forger != b.Forger || a.ForgerPublicKey != b.ForgerPublicKey:
		return ruleErrorf(ErrBadEvidence, "headers of different forgers (%s, %s)", a.Forger, b.Forger)
	}
	ha, hb := a.Hash(), b.Hash()
	switch c := strings.Compare(string(ha[:]), string(hb[:])); {
	case c == 0:
		return ruleErrorf(ErrBadEvidence, "the two headers are the same (%s)", ha)
	case c > 0:
		return ruleErrorf(ErrBadEvidence, "headers out of order: a must have the lower hash")
	}
	pub, err := a.forgerKey()
	if err != nil {
		return ruleErrorf(ErrBadEvidence, "%v", err)
	}
	alpha := SeedAlpha(g.ChainID, e.ParentSeed, a.Height)
	for _, h := range []*Header{a, b} {
		if err := verify(pub, h.Signature, h.SigningBytes(), ErrBadEvidence); err != nil {
			return ruleErrorf(ErrBadEvidence, "header %s: %v", h.Hash(), err)
		}
		pi, err := hex.DecodeString(h.SeedProof)
		if err != nil || len(pi) != SeedProofSize {
			return ruleErrorf(ErrBadEvidence, "header %s: seed_proof is not %d bytes of hex", h.Hash(), SeedProofSize)
		}
		if ok, _ := ecvrf.Verify(voi.PublicKey(pub), pi, alpha); !ok {
			return ruleErrorf(ErrBadEvidence, "header %s: seed_proof does not verify on this chain over parent seed %s", h.Hash(), e.ParentSeed)
		}
	}
	return nil
}

// checkBlockEvidence checks a block's evidence list on its own: the count,
// the root in the header, each item, and one item per (forger, height).
func checkBlockEvidence(g *Genesis, b *Block) error {
	if len(b.Evidence) > MaxBlockEvidence {
		return ruleErrorf(ErrTooMuchEvidence, "%d evidence items, at most %d", len(b.Evidence), MaxBlockEvidence)
	}
	if root := EvidenceRoot(b.Evidence); root != b.EvidenceRoot {
		return ruleErrorf(ErrBadEvidenceRoot, "evidence_root %s, evidence hashes to %s", b.EvidenceRoot, root)
	}
	seen := make(map[string]struct{}, len(b.Evidence))
	for i := range b.Evidence {
		e := &b.Evidence[i]
		if err := e.Check(g, b.Height); err != nil {
			return &EvidenceError{Index: i, Err: err}
		}
		k := slashKey(e.Forger(), e.Height())
		if _, dup := seen[k]; dup {
			return &EvidenceError{Index: i, Err: ruleErrorf(ErrDuplicateEvidence, "a second item for %s at height %d", e.Forger(), e.Height())}
		}
		seen[k] = struct{}{}
	}
	return nil
}

// EvidenceError says which evidence item of a block broke a rule; it
// unwraps to the rule error.
type EvidenceError struct {
	Index int
	Err   error
}

func (e *EvidenceError) Error() string {
	return "evidence " + strconv.Itoa(e.Index) + ": " + e.Err.Error()
}

func (e *EvidenceError) Unwrap() error { return e.Err }

// Slashing is the state's record of one slashing.
type Slashing struct {
	Forger Address `json:"forger"`
	Height uint64  `json:"height"` // where it equivocated
	// IncludedIn is the height of the block whose evidence slashed it.
	IncludedIn uint64 `json:"included_in"`
	// Burned is the stake burned (0 with slash_percent 0, or at the floor).
	Burned uint64 `json:"burned"`
}

func slashKey(forger Address, height uint64) string {
	return slashPrefix + string(forger) + ":" + strconv.FormatUint(height, 10)
}

// Slashed returns the slashing of forger for height, if the state holds one.
func (s *State) Slashed(forger Address, height uint64) (Slashing, bool) {
	rec, ok := s.accounts.get(Address(slashKey(forger, height)))
	if !ok {
		return Slashing{}, false
	}
	return Slashing{Forger: forger, Height: height, IncludedIn: rec.Nonce, Burned: rec.Balance}, true
}

// IsSlashRecord reports whether a state key is a slashing record rather
// than an account (stores and listings that walk raw keys use it).
func IsSlashRecord(a Address) bool { return strings.HasPrefix(string(a), slashPrefix) }

// SlashAmount is what slashing an account of stake would burn, with
// slash_percent and the stake floor of g, when the state holds totalLots.
func SlashAmount(g *Genesis, stake, totalLots uint64) uint64 {
	burn := stake / 100 * uint64(g.SlashPercent)
	burn += stake % 100 * uint64(g.SlashPercent) / 100 // no overflow for any stake
	lot := max(g.LotSize, 1)
	floorLots := (g.MinTotalStake + lot - 1) / lot
	spare := uint64(0)
	if totalLots > floorLots {
		spare = totalLots - floorLots
	}
	if own := stake / lot; own > spare {
		// Keep (own − spare) whole lots: the total stays at the floor.
		keep := (own - spare) * lot
		burn = min(burn, stake-keep)
	}
	return burn
}

// applyEvidence slashes the forger of each evidence item (Check has run):
// a (forger, height) already slashed on this branch is refused.
func (s *State) applyEvidence(j *journal, b *Block, g *Genesis) error {
	for i := range b.Evidence {
		e := &b.Evidence[i]
		key := Address(slashKey(e.Forger(), e.Height()))
		if rec, ok := s.accounts.get(key); ok {
			return &EvidenceError{Index: i, Err: ruleErrorf(ErrAlreadySlashed, "%s was slashed for height %d in block %d", e.Forger(), e.Height(), rec.Nonce)}
		}
		acc := s.Account(e.Forger())
		burn := SlashAmount(g, acc.Stake, s.lots(g.LotSize))
		if burn > 0 {
			j.touch(s, e.Forger())
			acc.Stake -= burn
			s.put(e.Forger(), acc)
		}
		j.touch(s, key)
		s.put(key, Account{Balance: burn, Nonce: b.Height})
	}
	return nil
}
