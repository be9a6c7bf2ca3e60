// Package chain is the protocol that the node and the wallet share: transactions,
// blocks and genesis, their canonical bytes and hashes, the account state and its
// transition, and every validation rule with a stable error code. It does no I/O
// and imports no other package of this project but chain/election.
package chain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Address identifies an account: the lowercase hex of the first 20 bytes of
// SHA-256 of the account's 32-byte Ed25519 public key (40 characters).
type Address string

// AddressLen is the length of an address in hex characters.
const AddressLen = 40

// AddressOf derives the address of an Ed25519 public key.
func AddressOf(pub ed25519.PublicKey) Address {
	sum := sha256.Sum256(pub)
	return Address(hex.EncodeToString(sum[:20]))
}

// Valid reports whether a is 40 lowercase hex characters.
func (a Address) Valid() bool {
	if len(a) != AddressLen {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Short returns the address shortened for tables: "3f2a…91bc".
func (a Address) Short() string {
	if len(a) <= 10 {
		return string(a)
	}
	return string(a[:4]) + "…" + string(a[len(a)-4:])
}

// ParseAddress checks s and returns it as an Address.
func ParseAddress(s string) (Address, error) {
	a := Address(s)
	if !a.Valid() {
		return "", ruleErrorf(ErrBadAddress, "%q is not an address (40 lowercase hex characters)", s)
	}
	return a, nil
}

// Hash is a SHA-256 digest: block hashes, transaction ids, Merkle roots.
// It encodes as lowercase hex in JSON.
type Hash [32]byte

// String returns the lowercase hex of h.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zeros.
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText encodes h as lowercase hex.
func (h Hash) MarshalText() ([]byte, error) {
	out := make([]byte, 64)
	hex.Encode(out, h[:])
	return out, nil
}

// UnmarshalText decodes 64 hex characters.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("hash must be 64 hex characters, got %d", len(b))
	}
	if _, err := hex.Decode(h[:], b); err != nil {
		return fmt.Errorf("hash is not hex: %w", err)
	}
	return nil
}

// ParseHash decodes a 64-character hex hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	err := h.UnmarshalText([]byte(s))
	return h, err
}

// TxType names what a transaction does.
type TxType string

// The transaction types. EXCHANGE, TRANSFER and STAKE are the original's;
// UNSTAKE is new: without it, stake could never return to the balance.
const (
	TxExchange TxType = "EXCHANGE"
	TxTransfer TxType = "TRANSFER"
	TxStake    TxType = "STAKE"
	TxUnstake  TxType = "UNSTAKE"
)

// Transaction is a signed instruction to change the state.
type Transaction struct {
	Type      TxType    `json:"type"`
	ChainID   string    `json:"chain_id"`
	From      Address   `json:"from"`
	To        Address   `json:"to"`
	Amount    uint64    `json:"amount"`
	Fee       uint64    `json:"fee"`
	Nonce     uint64    `json:"nonce"`
	PublicKey PublicKey `json:"public_key"` // the 32-byte Ed25519 key; hex in JSON
	Signature Signature `json:"signature"`  // the 64-byte Ed25519 signature; hex in JSON

	// id caches ID: set where a transaction comes into being (Sign, the
	// binary and JSON decoders), zero when unknown. Unexported, so no codec
	// writes it; a copy carries it, and two copies of one decoded or signed
	// transaction still compare equal. Whoever changes a signed field of a
	// transaction it holds calls CacheID again (only tests do).
	id Hash
}

// Header is everything in a block but its transactions. The hash of a block is
// the hash of its header's canonical bytes without the signature.
type Header struct {
	Height          uint64    `json:"height"`
	PrevHash        Hash      `json:"prev_hash"`
	Timestamp       int64     `json:"timestamp"` // unix milliseconds
	Forger          Address   `json:"forger"`
	ForgerPublicKey PublicKey `json:"forger_public_key"` // zero ("") in block 0
	Rank            uint32    `json:"rank"`
	TxRoot          Hash      `json:"tx_root"`
	// SeedProof is the forger's ECVRF proof (80 bytes, hex in JSON) over
	// SeedAlpha(chain_id, parent seed, height); Seed is the first 32 bytes
	// of its output. Block 0 has no proof (the zero value, "" in JSON) and
	// the genesis hash as seed.
	SeedProof VRFProof `json:"seed_proof"`
	Seed      Hash     `json:"seed"`
	// EvidenceRoot commits to the block's evidence (EvidenceRoot); zero,
	// and then absent from the signed bytes and the JSON, when it has none.
	EvidenceRoot Hash `json:"evidence_root,omitzero"`
	// VoteRoot commits to the block's finality votes (VoteRoot); zero,
	// and then absent from the signed bytes and the JSON, when it has none.
	VoteRoot  Hash   `json:"vote_root,omitzero"`
	Signature string `json:"signature"`

	// vrf is what NewBlock knows of the seed input and Sign proves;
	// nil once signed, and on headers that were decoded.
	vrf *vrfInput
}

// Block is a header and the transactions it commits to.
type Block struct {
	Header
	Transactions []Transaction `json:"transactions"`
	// Evidence of equivocations this block's forger reports (evidence.go).
	Evidence []Evidence `json:"evidence,omitempty"`
	// Votes are finality votes the forger includes (finality.go).
	Votes []Vote `json:"votes,omitempty"`
}

// SetVotes attaches finality votes to an unsigned block and sets its
// root; sign the header after.
func (b *Block) SetVotes(votes []Vote) {
	b.Votes = votes
	b.VoteRoot = VoteRoot(votes)
}

// SetEvidence attaches evidence to an unsigned block and sets its root;
// sign the header after.
func (b *Block) SetEvidence(ev []Evidence) {
	b.Evidence = ev
	b.EvidenceRoot = EvidenceRoot(ev)
}

// Account is one address's slice of the state.
//
// Unbonding is stake an UNSTAKE took out of Stake (the v3 rules): it carries
// no lots and cannot be spent, slashing still reaches it, and at the apply
// of the block at height Release it returns to Balance. One account has
// one unbonding amount: a second UNSTAKE while coins are unbonding adds to
// it and moves Release to its own release height (the earlier coins wait
// longer; none ever waits less than unbonding_blocks). Balance + Unbonding
// never overflows: the rules refuse what would make it (overflow).
type Account struct {
	Balance   uint64 `json:"balance"`
	Stake     uint64 `json:"stake"`
	Nonce     uint64 `json:"nonce"`
	Unbonding uint64 `json:"unbonding"`
	// Release is the height whose block returns Unbonding to Balance;
	// 0 when nothing is unbonding.
	Release uint64 `json:"release_height,omitempty"`
}
