package chain

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/poslab/posd/chain/election"
)

// CheckStateless checks every rule a transaction must meet on its own, except
// the signature (see VerifySignature): known type, amount > 0, well-formed
// addresses and key, from = address(public_key), the chain id, and STAKE and
// UNSTAKE sent to oneself.
func (tx *Transaction) CheckStateless(chainID string) error {
	r := lookupTx(tx.Type)
	if r == nil {
		return ruleErrorf(ErrUnknownType, "type %q is not %s", tx.Type, typeNames())
	}
	if tx.ChainID != chainID {
		return ruleErrorf(ErrWrongChain, "chain_id %q, this network is %q", tx.ChainID, chainID)
	}
	if tx.Amount == 0 {
		return ruleErrorf(ErrZeroAmount, "amount must be greater than 0")
	}
	if !tx.From.Valid() {
		return ruleErrorf(ErrBadAddress, "from %q is not an address", tx.From)
	}
	if !tx.To.Valid() {
		return ruleErrorf(ErrBadAddress, "to %q is not an address", tx.To)
	}
	if tx.PublicKey.IsZero() {
		return errNoPublicKey
	}
	if a := AddressOf(tx.PublicKey[:]); a != tx.From {
		return ruleErrorf(ErrFromMismatch, "from %s is not the address of public_key (%s)", tx.From, a)
	}
	if r.ToSelf && tx.To != tx.From {
		return ruleErrorf(ErrStakeNotSelf, "%s must be sent to its own sender", tx.Type)
	}
	if tx.Amount+tx.Fee < tx.Amount {
		return ruleErrorf(ErrAmountOverflow, "amount %d + fee %d overflows", tx.Amount, tx.Fee)
	}
	return nil
}

// VerifySignature checks the Ed25519 signature over the signing bytes by
// the ZIP-215 rule (see SigVerifier).
func (tx *Transaction) VerifySignature() error {
	if tx.PublicKey.IsZero() {
		return errNoPublicKey
	}
	if tx.Signature.IsZero() {
		return errNoSignature
	}
	if !verifyZIP215(tx.PublicKey[:], tx.SigningBytes(), tx.Signature[:]) {
		return ruleErrorf(ErrBadSignature, "signature does not verify")
	}
	return nil
}

// A transaction without a key or a signature: the zero values, which are
// what JSON "" or an absent field decodes to (malformed hex never gets
// this far: the decoders refuse it with the same codes).
var (
	errNoPublicKey = &RuleError{Code: ErrBadPublicKey.Code, Message: "public key is missing"}
	errNoSignature = &RuleError{Code: ErrBadSignature.Code, Message: "signature is missing"}
)

// Validate runs CheckStateless and VerifySignature.
func (tx *Transaction) Validate(chainID string) error {
	if err := tx.CheckStateless(chainID); err != nil {
		return err
	}
	return tx.VerifySignature()
}

func verify(pub ed25519.PublicKey, sigHex string, msg []byte, sentinel *RuleError) error {
	var sig [ed25519.SignatureSize]byte
	if len(sigHex) != 2*len(sig) {
		return ruleErrorf(sentinel, "signature must be %d hex characters, got %d", 2*len(sig), len(sigHex))
	}
	// Lowercase only, as the forger writes it: the block hash leaves the
	// signature out, so a second spelling of the same signature would
	// give one block two encodings, each of which verified.
	if !unhexLower(sig[:], []byte(sigHex)) {
		return ruleErrorf(sentinel, "signature is not lowercase hex")
	}
	if !verifyZIP215(pub, msg, sig[:]) {
		return ruleErrorf(sentinel, "signature does not verify")
	}
	return nil
}

// BlockTxError says which transaction of a block broke a rule. It unwraps
// to the rule error, so errors.Is and CodeOf see the rule's own code.
type BlockTxError struct {
	Index int
	ID    Hash
	Err   error
}

func (e *BlockTxError) Error() string {
	return fmt.Sprintf("transaction %d (%s): %v", e.Index, e.ID, e.Err)
}

func (e *BlockTxError) Unwrap() error { return e.Err }

func txError(i int, tx *Transaction, err error) error {
	return &BlockTxError{Index: i, ID: tx.ID(), Err: err}
}

// Elect returns the forger candidates for the block after parent, best first:
// the genesis election seeded by ElectionSeed(g, parent) on the lots of
// state (the state after parent, see ElectionTable). max_lots bounds its
// cost (docs/PERFORMANCE.md), but callers should still compute it once per
// parent, outside locks others wait on.
func Elect(g *Genesis, parent *Header, state *State) ([]Address, error) {
	alg, err := g.Algorithm()
	if err != nil {
		return nil, err
	}
	return ElectWith(alg, g.MaxRank, ElectionSeed(g, parent), ElectionTable(g, state)), nil
}

// ElectWith is Elect on a prepared seed (ElectionSeed) and stake table
// (ElectionTable).
func ElectWith(alg election.Algorithm, maxRank uint32, seed string, stakes *election.StakeTable) []Address {
	names := alg.Rank(seed, stakes, int(maxRank))
	out := make([]Address, len(names))
	for i, n := range names {
		out[i] = Address(n)
	}
	return out
}

// TxVerifier checks a transaction's stateless rules and signature. Nodes
// pass one that skips signatures they already verified at admission.
type TxVerifier func(tx *Transaction) error

// CheckHeader checks b's header against its parent: height, prev hash, rank
// and forger against the candidates elected on the parent, timestamp window,
// signature, transaction count and tx root. nowMs is the validator's clock.
func CheckHeader(g *Genesis, parent *Header, b *Block, candidates []Address, nowMs int64) error {
	return checkHeader(g, parent, b, candidates, true, nowMs)
}

// CheckHeaderUnelected is CheckHeader without the election: every rule but
// "the forger is the candidate at its rank". Nodes use it on blocks of a
// side branch, whose parent state they do not hold, before storing them.
func CheckHeaderUnelected(g *Genesis, parent *Header, b *Block, nowMs int64) error {
	return checkHeader(g, parent, b, nil, false, nowMs)
}

// CheckElected checks that h's forger is the candidate at h's rank
// (candidates from Elect on h's parent). It is part of CheckHeader; a
// node also runs it alone, first, on a block whose parent's election it
// holds, before any costlier check.
func CheckElected(h *Header, candidates []Address) error {
	if int(h.Rank) >= len(candidates) {
		return ruleErrorf(ErrBadRank, "rank %d, only %d candidates", h.Rank, len(candidates))
	}
	if h.Forger != candidates[h.Rank] {
		return ruleErrorf(ErrWrongForger, "forger %s, rank %d belongs to %s", h.Forger, h.Rank, candidates[h.Rank])
	}
	return nil
}

// checkHeader checks b's header; elected says whether to check the forger
// against candidates. The tx root is computed from the transactions' own
// ids (cached when they were decoded or signed, so no transaction is
// hashed again here).
func checkHeader(g *Genesis, parent *Header, b *Block, candidates []Address, elected bool, nowMs int64) error {
	h := &b.Header
	if h.Height != parent.Height+1 {
		return ruleErrorf(ErrBadHeight, "height %d, parent is at %d", h.Height, parent.Height)
	}
	if ph := parent.Hash(); h.PrevHash != ph {
		return ruleErrorf(ErrBadPrevHash, "prev_hash %s, parent is %s", h.PrevHash, ph)
	}
	if h.Rank >= g.MaxRank {
		return ruleErrorf(ErrBadRank, "rank %d, max_rank is %d", h.Rank, g.MaxRank)
	}
	if elected {
		if err := CheckElected(h, candidates); err != nil {
			return err
		}
	}
	pub, err := h.forgerKey()
	if err != nil {
		return err
	}
	if earliest := parent.Timestamp + int64(h.Rank)*g.SlotMs; h.Timestamp < earliest {
		return ruleErrorf(ErrEarlyTimestamp, "timestamp %d, rank %d may forge from %d", h.Timestamp, h.Rank, earliest)
	}
	if h.Timestamp > nowMs+MaxFutureMs {
		return ruleErrorf(ErrFutureBlock, "timestamp %d is more than %d ms ahead of %d", h.Timestamp, MaxFutureMs, nowMs)
	}
	if err := verify(pub, h.Signature, h.SigningBytes(), ErrBadBlockSig); err != nil {
		return err
	}
	if err := checkSeed(g, parent, h, pub); err != nil {
		return err
	}
	if len(b.Transactions) > g.MaxBlockTxs {
		return ruleErrorf(ErrTooManyTxs, "%d transactions, at most %d", len(b.Transactions), g.MaxBlockTxs)
	}
	if root := TxRoot(b.Transactions); root != h.TxRoot {
		return ruleErrorf(ErrBadTxRoot, "tx_root %s, transactions hash to %s", h.TxRoot, root)
	}
	if err := checkBlockEvidence(g, b); err != nil {
		return err
	}
	return checkBlockVotes(g, b)
}

// checkBlockVotes checks a block's votes on their own: the count, the
// root in the header and each vote's stateless rule. Their signatures are
// checked with the transactions' (CheckBlockTxs), their stateful rules by
// Apply (finality.go).
func checkBlockVotes(g *Genesis, b *Block) error {
	if len(b.Votes) > g.MaxBlockVotes {
		return ruleErrorf(ErrTooManyVotes, "%d votes, at most %d", len(b.Votes), g.MaxBlockVotes)
	}
	if root := VoteRoot(b.Votes); root != b.VoteRoot {
		return ruleErrorf(ErrBadVoteRoot, "vote_root %s, votes hash to %s", b.VoteRoot, root)
	}
	for i := range b.Votes {
		if err := b.Votes[i].CheckStateless(); err != nil {
			return &VoteError{Index: i, Err: err}
		}
	}
	return nil
}

// forgerKey decodes forger_public_key and checks it belongs to forger.
func (h *Header) forgerKey() (ed25519.PublicKey, error) {
	if h.ForgerPublicKey.IsZero() {
		return nil, ruleErrorf(ErrWrongForger, "forger key: public key is missing")
	}
	pub := ed25519.PublicKey(h.ForgerPublicKey[:])
	if AddressOf(pub) != h.Forger {
		return nil, ruleErrorf(ErrWrongForger, "forger_public_key is not the forger's key")
	}
	return pub, nil
}

// VerifySignature checks that the header is signed by the forger it names.
// Nodes use it as a cheap first filter for blocks they cannot validate fully yet.
func (h *Header) VerifySignature() error {
	pub, err := h.forgerKey()
	if err != nil {
		return err
	}
	return verify(pub, h.Signature, h.SigningBytes(), ErrBadBlockSig)
}

// CheckBlockTxs checks every transaction of b on its own, then the
// signatures of its votes (in batches). With verify
// nil, that is the stateless rules of each, then every signature in
// batches (see SigVerifier, shared by all callers); otherwise verify runs
// on each transaction, on all cores for large blocks. Either way the error
// reported is the one of the lowest index, as a sequential check would
// find it.
func CheckBlockTxs(g *Genesis, b *Block, verify TxVerifier) error {
	if verify == nil {
		return CheckBlockTxsBatch(g, b, defaultSigVerifier, nil)
	}
	if err := checkBlockTxsWith(b, verify); err != nil {
		return err
	}
	return defaultSigVerifier.CheckVotes(g.ChainID, b.Votes)
}

func checkBlockTxsWith(b *Block, verify TxVerifier) error {
	txs := b.Transactions
	workers := min(runtime.GOMAXPROCS(0), len(txs)/parallelThreshold)
	if workers <= 1 {
		for i := range txs {
			if err := verify(&txs[i]); err != nil {
				return txError(i, &txs[i], err)
			}
		}
		return nil
	}
	errs := make([]error, len(txs))
	var wg sync.WaitGroup
	chunk := (len(txs) + workers - 1) / workers
	for start := 0; start < len(txs); start += chunk {
		end := min(start+chunk, len(txs))
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				if errs[i] = verify(&txs[i]); errs[i] != nil {
					return // later ones in this chunk cannot matter
				}
			}
		}(start, end)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return txError(i, &txs[i], err)
		}
	}
	return nil
}

// CheckBlockTxsBatch runs the stateless rules of every transaction of b and
// checks their signatures, then its votes', in batches with sv, skipping those verified
// reports as already checked (a pool's cache of admitted signatures; nil
// skips none). The error is the lowest index's, as a sequential check
// would find it.
func CheckBlockTxsBatch(g *Genesis, b *Block, sv *SigVerifier, verified func(tx *Transaction) bool) error {
	txs := b.Transactions
	// Stateless rules first: cheap, and a failure bounds the signatures
	// worth checking to those before it.
	end := len(txs)
	var first error
	for i := range txs {
		if err := txs[i].CheckStateless(g.ChainID); err != nil {
			end, first = i, txError(i, &txs[i], err)
			break
		}
	}
	var idx []int
	pending := txs[:end]
	if verified != nil {
		sub := make([]Transaction, 0, end)
		for i := range pending {
			if !verified(&pending[i]) {
				sub = append(sub, pending[i])
				idx = append(idx, i)
			}
		}
		pending = sub
	}
	if err := sv.CheckTxs(pending); err != nil {
		var te *BlockTxError
		if idx != nil && errors.As(err, &te) {
			i := idx[te.Index]
			return txError(i, &txs[i], te.Err)
		}
		return err
	}
	if first != nil {
		return first
	}
	return sv.CheckVotes(g.ChainID, b.Votes)
}

// parallelThreshold is the number of transactions per extra core below
// which spreading the checks costs more than it saves.
const parallelThreshold = 32

// ValidateAndApply checks b completely against parent and applies it to
// state (the state after parent), returning the undo record. On any error,
// state is unchanged. candidates come from Elect on parent.
func ValidateAndApply(g *Genesis, parent *Header, b *Block, candidates []Address, state *State, nowMs int64, verify TxVerifier) (*Undo, error) {
	if err := CheckHeader(g, parent, b, candidates, nowMs); err != nil {
		return nil, err
	}
	if err := CheckBlockTxs(g, b, verify); err != nil {
		return nil, err
	}
	return state.Apply(b, g)
}

// ValidatePrecheckedAndApply is ValidateAndApply for a block whose
// transactions the caller has already checked (CheckBlockTxs: stateless
// rules and signatures, and the votes' signatures), e.g. off the lock that
// guards state. It checks the header, the tx root included (from the
// transactions' cached ids), and applies the block.
func ValidatePrecheckedAndApply(g *Genesis, parent *Header, b *Block, candidates []Address, state *State, nowMs int64) (*Undo, error) {
	if err := checkHeader(g, parent, b, candidates, true, nowMs); err != nil {
		return nil, err
	}
	return state.Apply(b, g)
}

// NewBlock assembles an unsigned block on parent under genesis g; sign it
// with Header.Sign, which also proves its seed (seed_proof and seed).
func NewBlock(g *Genesis, parent *Header, rank uint32, timestampMs int64, txs []Transaction) *Block {
	return &Block{
		Header: Header{
			Height:    parent.Height + 1,
			PrevHash:  parent.Hash(),
			Timestamp: timestampMs,
			Rank:      rank,
			TxRoot:    TxRoot(txs),
			vrf:       &vrfInput{chainID: g.ChainID, parentSeed: parent.Seed},
		},
		Transactions: txs,
	}
}
