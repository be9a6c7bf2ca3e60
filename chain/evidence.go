package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519/extra/ecvrf"
)

// Evidence and slashing (the v2 and v3 rules, docs/CONSENSUS.md; the attack lab).
//
// Three kinds of offence are slashable: a header equivocation (below), a
// double vote (one voter, two different votes for one target height) and
// a surround vote (one voter, votes s1→t1 and s2→t2 with s1 < s2 < t2 <
// t1 by heights). Evidence of a vote kind is the two signed votes.
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
// burn is slash_percent of the offender's bonded and unbonding stake at
// the moment the evidence is applied, before the block's releases and
// transactions (an UNSTAKE in the same block cannot escape it, nor stake
// released at that height), the bonded part never taking the total stake
// below min_total_stake (the burn is cut to what the floor allows: the
// chain must keep a forger), and slash_percent 0 records the slashing and
// burns nothing. Evidence expires after unbonding_blocks (header evidence
// after MaxEvidenceAge too), so unstaked coins are still unbonding when
// any evidence against them can arrive: no stake escapes its evidence.

// MaxEvidenceAge is how far below a block the header evidence it carries
// may be: the reorg limit, beyond which no node could have the
// equivocating blocks as side blocks any more. unbonding_blocks bounds it
// further, and bounds vote evidence.
const MaxEvidenceAge = 64

// MaxBlockEvidence bounds the evidence one block carries (each item costs
// two signature and two VRF checks, and one record in the state).
const MaxBlockEvidence = 16

const evidenceDomain = "posd/evidence/v1\x00"

// EvidenceKind names the offence evidence proves; JSON carries the name.
type EvidenceKind string

// The evidence kinds. The zero kind reads as EvidenceEquivocation, the
// only kind before v3.
const (
	EvidenceEquivocation EvidenceKind = "equivocation"
	EvidenceDoubleVote   EvidenceKind = "double_vote"
	EvidenceSurroundVote EvidenceKind = "surround_vote"
)

// code is the kind's byte in encodings and ids; 0 for an unknown kind.
func (k EvidenceKind) code() byte {
	switch k {
	case EvidenceEquivocation, "":
		return 1
	case EvidenceDoubleVote:
		return 2
	case EvidenceSurroundVote:
		return 3
	}
	return 0
}

func kindOfCode(c byte) (EvidenceKind, bool) {
	switch c {
	case 1:
		return EvidenceEquivocation, true
	case 2:
		return EvidenceDoubleVote, true
	case 3:
		return EvidenceSurroundVote, true
	}
	return "", false
}

// isVote reports whether k is a vote kind.
func (k EvidenceKind) isVote() bool { return k == EvidenceDoubleVote || k == EvidenceSurroundVote }

// offence classes: one slashing per (class, offender, height). Both vote
// kinds are one class, so a voter is slashed once for its votes at one
// target height however many pairs of them are slashable.
const (
	classEquivocation byte = 1
	classVote         byte = 2
)

func (k EvidenceKind) class() byte {
	if k.isVote() {
		return classVote
	}
	return classEquivocation
}

// Evidence proves one offence. Kind says which; an equivocation is two
// headers signed by one forger for one slot (ParentSeed, A, B); a vote
// offence is two votes signed by one voter (VoteA, VoteB). The pair is in
// canonical order (NewEvidence, NewVoteEvidence), so one offence has one
// encoding and one id.
type Evidence struct {
	Kind EvidenceKind
	// ParentSeed is the seed of the parent both headers name; their seed
	// proofs must verify over it and this chain's id.
	ParentSeed Hash
	A          Header
	B          Header
	// VoteA and VoteB: for a double vote, VoteA has the lower encoding;
	// for a surround vote, VoteA surrounds VoteB.
	VoteA Vote
	VoteB Vote
}

// NewEvidence pairs two headers, ordered by hash.
func NewEvidence(parentSeed Hash, x, y *Header) Evidence {
	a, b := *x, *y
	a.vrf, b.vrf = nil, nil
	ha, hb := a.Hash(), b.Hash()
	if strings.Compare(string(hb[:]), string(ha[:])) < 0 {
		a, b = b, a
	}
	return Evidence{Kind: EvidenceEquivocation, ParentSeed: parentSeed, A: a, B: b}
}

// NewVoteEvidence makes the evidence two votes of one voter prove, in
// canonical order: a double vote or a surround vote. Errors: bad_evidence
// (two voters), not_slashable (no offence). Signatures are not checked.
func NewVoteEvidence(x, y *Vote) (Evidence, error) {
	if x.PublicKey != y.PublicKey {
		return Evidence{}, ruleErrorf(ErrBadEvidence, "votes of two voters (%s, %s)", x.Voter(), y.Voter())
	}
	switch {
	case x.Target.Height == y.Target.Height && !sameLink(x, y):
		a, b := *x, *y
		if bytes.Compare(EncodeVote(&b), EncodeVote(&a)) < 0 {
			a, b = b, a
		}
		return Evidence{Kind: EvidenceDoubleVote, VoteA: a, VoteB: b}, nil
	case surrounds(x, y):
		return Evidence{Kind: EvidenceSurroundVote, VoteA: *x, VoteB: *y}, nil
	case surrounds(y, x):
		return Evidence{Kind: EvidenceSurroundVote, VoteA: *y, VoteB: *x}, nil
	}
	return Evidence{}, ruleErrorf(ErrNotSlashable, "votes %d→%d and %d→%d are neither a double nor a surround vote",
		x.Source.Height, x.Target.Height, y.Source.Height, y.Target.Height)
}

// slashableVotes reports whether two votes of one voter are a double or a
// surround vote (in either order). Signatures are not checked.
func slashableVotes(x, y *Vote) bool {
	_, err := NewVoteEvidence(x, y)
	return err == nil
}

// sameLink reports whether two votes vote for the same link.
func sameLink(x, y *Vote) bool { return x.Source == y.Source && x.Target == y.Target }

// surrounds reports whether a's link surrounds b's: s1 < s2 < t2 < t1.
func surrounds(a, b *Vote) bool {
	return a.Source.Height < b.Source.Height && b.Source.Height < b.Target.Height && b.Target.Height < a.Target.Height
}

// KindOf returns the evidence's kind (the zero kind is an equivocation).
func (e *Evidence) KindOf() EvidenceKind {
	if e.Kind == "" {
		return EvidenceEquivocation
	}
	return e.Kind
}

// Height is the height of the offence: where the forger equivocated, or
// the higher target height of the two votes.
func (e *Evidence) Height() uint64 {
	if e.KindOf().isVote() {
		return max(e.VoteA.Target.Height, e.VoteB.Target.Height)
	}
	return e.A.Height
}

// Forger is the offender: the equivocating forger, or the voter.
func (e *Evidence) Forger() Address {
	if e.KindOf().isVote() {
		return e.VoteA.Voter()
	}
	return e.A.Forger
}

// ID is SHA-256 of the domain, the parent seed and both header hashes for
// an equivocation (as before v3); for a vote kind, of the domain, the
// kind's byte and both encoded votes.
func (e *Evidence) ID() Hash {
	if e.KindOf().isVote() {
		buf := make([]byte, 0, len(evidenceDomain)+1+2*EncodedVoteLen)
		buf = append(buf, evidenceDomain...)
		buf = append(buf, e.KindOf().code())
		buf = AppendVote(buf, &e.VoteA)
		buf = AppendVote(buf, &e.VoteB)
		return sha256.Sum256(buf)
	}
	ha, hb := e.A.Hash(), e.B.Hash()
	buf := make([]byte, 0, len(evidenceDomain)+96)
	buf = append(buf, evidenceDomain...)
	buf = append(buf, e.ParentSeed[:]...)
	buf = append(buf, ha[:]...)
	buf = append(buf, hb[:]...)
	return sha256.Sum256(buf)
}

// evidenceJSON is the JSON of evidence: its kind, then the pair.
type evidenceJSON struct {
	Kind       EvidenceKind    `json:"kind"`
	ParentSeed *Hash           `json:"parent_seed,omitempty"`
	A          json.RawMessage `json:"a"`
	B          json.RawMessage `json:"b"`
}

// MarshalJSON writes {"kind", "parent_seed", "a", "b"} for an
// equivocation (headers) and {"kind", "a", "b"} for a vote kind (votes).
func (e Evidence) MarshalJSON() ([]byte, error) {
	v := evidenceJSON{Kind: e.KindOf()}
	var a, b any = e.A, e.B
	if v.Kind.isVote() {
		a, b = e.VoteA, e.VoteB
	} else {
		ps := e.ParentSeed
		v.ParentSeed = &ps
	}
	var err error
	if v.A, err = json.Marshal(a); err != nil {
		return nil, err
	}
	if v.B, err = json.Marshal(b); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads what MarshalJSON writes; no kind reads as an
// equivocation (JSON written before v3).
func (e *Evidence) UnmarshalJSON(data []byte) error {
	var v evidenceJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	out := Evidence{Kind: v.Kind}
	if v.Kind == "" {
		out.Kind = EvidenceEquivocation
	}
	if out.Kind.code() == 0 {
		return fmt.Errorf("evidence kind %q is not %s, %s or %s", v.Kind, EvidenceEquivocation, EvidenceDoubleVote, EvidenceSurroundVote)
	}
	var a, b any = &out.A, &out.B
	if out.Kind.isVote() {
		a, b = &out.VoteA, &out.VoteB
	} else if v.ParentSeed != nil {
		out.ParentSeed = *v.ParentSeed
	}
	for _, p := range []struct {
		raw json.RawMessage
		dst any
	}{{v.A, a}, {v.B, b}} {
		if len(p.raw) == 0 {
			return fmt.Errorf("evidence of kind %s lacks a or b", out.Kind)
		}
		if err := json.Unmarshal(p.raw, p.dst); err != nil {
			return err
		}
	}
	*e = out
	return nil
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

// EvidenceAge is how far below a block evidence of kind k may be: for
// header evidence MaxEvidenceAge, and for every kind at most
// unbonding_blocks, past which the offender's unstaked coins may be
// released. With unbonding off (0), MaxEvidenceAge.
func (g *Genesis) EvidenceAge(k EvidenceKind) uint64 {
	age := uint64(MaxEvidenceAge)
	if k.isVote() && g.UnbondingBlocks > 0 {
		age = g.UnbondingBlocks
	}
	if g.UnbondingBlocks > 0 {
		age = min(age, g.UnbondingBlocks)
	}
	return age
}

// Check runs every rule evidence must meet on its own, for a block at
// blockHeight. An equivocation: the same height and parent, the same
// forger with its key, different hashes in order, both signatures and
// both seed proofs (over this chain's id and ParentSeed). A vote kind:
// one voter, two well-formed votes that form the offence the kind names,
// in canonical order, both signatures. Every kind: an offence below the
// block and at most EvidenceAge below it (evidence_too_old).
func (e *Evidence) Check(g *Genesis, blockHeight uint64) error {
	switch k := e.KindOf(); {
	case k.code() == 0:
		return ruleErrorf(ErrBadEvidence, "unknown evidence kind %q", e.Kind)
	case k.isVote():
		return e.checkVotes(g, blockHeight)
	}
	a, b := &e.A, &e.B
	switch {
	case a.Height != b.Height:
		return ruleErrorf(ErrBadEvidence, "headers at heights %d and %d", a.Height, b.Height)
	case a.Height == 0:
		return ruleErrorf(ErrBadEvidence, "evidence at height 0 (genesis is not forged)")
	}
	if err := checkAge(g, EvidenceEquivocation, a.Height, blockHeight); err != nil {
		return err
	}
	switch {
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
		if h.SeedProof.IsZero() {
			return ruleErrorf(ErrBadEvidence, "header %s: seed_proof is missing", h.Hash())
		}
		if ok, _ := ecvrf.Verify(voi.PublicKey(pub), h.SeedProof[:], alpha); !ok {
			return ruleErrorf(ErrBadEvidence, "header %s: seed_proof does not verify on this chain over parent seed %s", h.Hash(), e.ParentSeed)
		}
	}
	return nil
}

// checkAge refuses an offence at height h that is not below the block or
// is more than EvidenceAge below it.
func checkAge(g *Genesis, k EvidenceKind, h, blockHeight uint64) error {
	if h >= blockHeight {
		return ruleErrorf(ErrBadEvidence, "evidence at height %d in a block at height %d: it must be older", h, blockHeight)
	}
	if limit := g.EvidenceAge(k); blockHeight-h > limit {
		return ruleErrorf(ErrEvidenceTooOld, "evidence at height %d is %d heights below the block (limit %d)", h, blockHeight-h, limit)
	}
	return nil
}

// checkVotes is Check for the vote kinds.
func (e *Evidence) checkVotes(g *Genesis, blockHeight uint64) error {
	a, b := &e.VoteA, &e.VoteB
	if a.PublicKey != b.PublicKey {
		return ruleErrorf(ErrBadEvidence, "votes of two voters (%s, %s)", a.Voter(), b.Voter())
	}
	for _, v := range []*Vote{a, b} {
		if err := v.CheckStateless(); err != nil {
			return ruleErrorf(ErrBadEvidence, "%v", err)
		}
	}
	if sameLink(a, b) {
		return ruleErrorf(ErrBadEvidence, "the two votes are for one link %d→%d", a.Source.Height, a.Target.Height)
	}
	switch e.Kind {
	case EvidenceDoubleVote:
		if a.Target.Height != b.Target.Height {
			return ruleErrorf(ErrNotSlashable, "double_vote with target heights %d and %d", a.Target.Height, b.Target.Height)
		}
		if bytes.Compare(EncodeVote(a), EncodeVote(b)) > 0 {
			return ruleErrorf(ErrBadEvidence, "votes out of order: a must have the lower encoding")
		}
	case EvidenceSurroundVote:
		if surrounds(b, a) {
			return ruleErrorf(ErrBadEvidence, "votes out of order: a must be the surrounding vote")
		}
		if !surrounds(a, b) {
			return ruleErrorf(ErrNotSlashable, "surround_vote %d→%d does not surround %d→%d", a.Source.Height, a.Target.Height, b.Source.Height, b.Target.Height)
		}
	}
	if err := checkAge(g, e.Kind, e.Height(), blockHeight); err != nil {
		return err
	}
	for _, v := range []*Vote{a, b} {
		if err := v.VerifySignature(g.ChainID); err != nil {
			return ruleErrorf(ErrBadEvidence, "%v", err)
		}
	}
	return nil
}

// checkBlockEvidence checks a block's evidence list on its own: the count,
// the root in the header, each item, and one item per offence.
func checkBlockEvidence(g *Genesis, b *Block) error {
	if len(b.Evidence) > MaxBlockEvidence {
		return ruleErrorf(ErrTooMuchEvidence, "%d evidence items, at most %d", len(b.Evidence), MaxBlockEvidence)
	}
	if root := EvidenceRoot(b.Evidence); root != b.EvidenceRoot {
		return ruleErrorf(ErrBadEvidenceRoot, "evidence_root %s, evidence hashes to %s", b.EvidenceRoot, root)
	}
	seen := make(map[Address]struct{}, len(b.Evidence))
	for i := range b.Evidence {
		e := &b.Evidence[i]
		if err := e.Check(g, b.Height); err != nil {
			return &EvidenceError{Index: i, Err: err}
		}
		k := e.offenceKey()
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

// Slashing is the state's record of one slashed offence.
type Slashing struct {
	Kind EvidenceKind `json:"kind"`
	// Forger is the offender: the forger, or the voter.
	Forger Address `json:"forger"`
	Height uint64  `json:"height"` // of the offence (Evidence.Height)
	// IncludedIn is the height of the block whose evidence slashed it.
	IncludedIn uint64 `json:"included_in"`
	// Burned is the stake burned, bonded and unbonding (0 with
	// slash_percent 0, or at the floor with nothing unbonding).
	Burned uint64 `json:"burned"`
}

// offenceKey is the slashings table's key of an offence: class (1), height
// (8, big endian), offender.
func offenceKey(class byte, offender Address, height uint64) Address {
	k := make([]byte, 0, 9+len(offender))
	k = append(k, class)
	k = binary.BigEndian.AppendUint64(k, height)
	return Address(append(k, offender...))
}

func (r *Slashing) key() Address { return offenceKey(r.Kind.class(), r.Forger, r.Height) }

func (e *Evidence) offenceKey() Address {
	return offenceKey(e.KindOf().class(), e.Forger(), e.Height())
}

// Slashed returns the slashing of forger for a header equivocation at
// height, if the state holds one.
func (s *State) Slashed(forger Address, height uint64) (Slashing, bool) {
	return s.slashings.get(offenceKey(classEquivocation, forger, height))
}

// SlashedFor returns the slashing of the offence e proves, if the state
// holds one (for a vote kind, of either vote kind at e's height).
func (s *State) SlashedFor(e *Evidence) (Slashing, bool) {
	return s.slashings.get(e.offenceKey())
}

// SlashingOf returns the slashing of offender's offence of kind k at
// height, if the state holds one (both vote kinds are one offence).
func (s *State) SlashingOf(k EvidenceKind, offender Address, height uint64) (Slashing, bool) {
	return s.slashings.get(offenceKey(k.class(), offender, height))
}

// Slashings lists every slashing record, by offender, then height, then kind.
func (s *State) Slashings() []Slashing {
	out := make([]Slashing, 0, s.slashings.Len())
	s.slashings.each(func(_ Address, r Slashing) bool {
		out = append(out, r)
		return true
	})
	slices.SortFunc(out, func(a, b Slashing) int {
		if c := strings.Compare(string(a.Forger), string(b.Forger)); c != 0 {
			return c
		}
		if a.Height != b.Height {
			return cmpU64(a.Height, b.Height)
		}
		return int(a.Kind.class()) - int(b.Kind.class())
	})
	return out
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// SetSlashing writes a slashing record directly. Stores use it to load
// state from disk; the protocol changes state only through Apply.
func (s *State) SetSlashing(r Slashing) {
	if r.Kind == "" {
		r.Kind = EvidenceEquivocation
	}
	s.slashings.set(r.key(), r)
}

// SlashAmount is what slashing an account of stake would burn of it, with
// slash_percent and the stake floor of g, when the state holds totalLots.
func SlashAmount(g *Genesis, stake, totalLots uint64) uint64 {
	burn := percentOf(stake, g.SlashPercent)
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

// percentOf is v × pct / 100 rounded down, without overflow for any v.
func percentOf(v uint64, pct uint32) uint64 {
	return v/100*uint64(pct) + v%100*uint64(pct)/100
}

// applyEvidence slashes the offender of each evidence item (Check has
// run): slash_percent of its bonded stake (down to the floor) and of its
// unbonding stake. An offence already slashed on this branch is refused.
func (s *State) applyEvidence(j *journal, b *Block, g *Genesis) error {
	for i := range b.Evidence {
		e := &b.Evidence[i]
		key := e.offenceKey()
		if rec, ok := s.slashings.get(key); ok {
			return &EvidenceError{Index: i, Err: ruleErrorf(ErrAlreadySlashed, "%s was slashed for height %d in block %d", e.Forger(), e.Height(), rec.IncludedIn)}
		}
		who := e.Forger()
		acc := s.Account(who)
		burnStake := SlashAmount(g, acc.Stake, s.lots(g.LotSize))
		burnUnbonding := percentOf(acc.Unbonding, g.SlashPercent)
		if burnStake+burnUnbonding > 0 {
			j.touchAs(who, acc)
			acc.Stake -= burnStake
			acc.Unbonding -= burnUnbonding
			if acc.Unbonding == 0 {
				acc.Release = 0
			}
			s.put(who, acc)
		}
		rec := Slashing{Kind: e.KindOf(), Forger: who, Height: e.Height(), IncludedIn: b.Height, Burned: burnStake + burnUnbonding}
		s.slashings.set(key, rec)
		j.slashings = append(j.slashings, rec)
	}
	return nil
}
