package chain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Finality votes (the v3 rules, docs/CONSENSUS.md). A staker votes for a link between two
// checkpoints of its head's branch: from the highest justified checkpoint it
// knows (the source) to the newest checkpoint (the target). Votes carried in
// blocks justify and finalize checkpoints; two votes of one voter that form a
// double or surround pair are slashable evidence.
//
// Protocol values in a vote are bytes; hex appears only in JSON.

// voteDomain keeps a vote signature from ever verifying as a transaction's
// or a header's (see the other domains in encoding.go).
const voteDomain = "posd/vote/v1"

// PublicKey is a 32-byte Ed25519 public key; JSON and text carry its hex.
//
// Keys, signatures and seed proofs (PublicKey, Signature, VRFProof) are
// bytes inside and lowercase hex at the edges: in JSON, in tables, and
// where the canonical encodings (signing bytes, the block codec) have
// always written their hex. Their zero value means absent and its text
// is "" (length 0 in those encodings), as block 0's forger key and seed
// proof and an unsigned transaction's key and signature always were. So
// the all-zero bytes are no value: their hex is refused on input (the
// all-zero key is a small-order point, no one's key, and no real key's
// signature or proof is all zeros). Input must be lowercase hex, the form
// every encoder here writes: the text a transaction's id hashes is
// rebuilt from the bytes, so another spelling could not keep its id.
type PublicKey [ed25519.PublicKeySize]byte

// Signature is a 64-byte Ed25519 signature; JSON and text carry its hex.
// The zero value is no signature (text "").
type Signature [ed25519.SignatureSize]byte

// IsZero reports whether k is the zero value: no key.
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// String returns the lowercase hex of k ("" for the zero value).
func (k PublicKey) String() string { return hexString(k[:]) }

// MarshalText encodes k as lowercase hex ("" for the zero value).
func (k PublicKey) MarshalText() ([]byte, error) { return appendHexText(nil, k[:]), nil }

// UnmarshalText decodes 64 lowercase hex characters, or "" (no key).
// Anything else is a *RuleError bad_public_key.
func (k *PublicKey) UnmarshalText(b []byte) error {
	return unhexText(k[:], b, "public key", ErrBadPublicKey)
}

// IsZero reports whether s is the zero value: no signature.
func (s Signature) IsZero() bool { return s == Signature{} }

// String returns the lowercase hex of s ("" for the zero value).
func (s Signature) String() string { return hexString(s[:]) }

// MarshalText encodes s as lowercase hex ("" for the zero value).
func (s Signature) MarshalText() ([]byte, error) { return appendHexText(nil, s[:]), nil }

// UnmarshalText decodes 128 lowercase hex characters, or "" (no
// signature). Anything else is a *RuleError bad_signature.
func (s *Signature) UnmarshalText(b []byte) error {
	return unhexText(s[:], b, "signature", ErrBadSignature)
}

// appendHexText appends the text of a key, signature or proof: its
// lowercase hex, nothing when it is all zeros (absent).
func appendHexText(out, b []byte) []byte {
	if allZero(b) {
		return out
	}
	return hex.AppendEncode(out, b)
}

// hexString is appendHexText as a string.
func hexString(b []byte) string {
	if allZero(b) {
		return ""
	}
	return hex.EncodeToString(b)
}

// appendHexField appends b as the canonical encodings write it: the
// uvarint length of its text, then the text (the hex, or nothing).
func appendHexField(out, b []byte) []byte {
	if allZero(b) {
		return append(out, 0)
	}
	out = binary.AppendUvarint(out, uint64(2*len(b)))
	return hex.AppendEncode(out, b)
}

// hexFieldLen is the length of appendHexField's output.
func hexFieldLen(b []byte) int {
	if allZero(b) {
		return 1
	}
	return uvarintLen(uint64(2*len(b))) + 2*len(b)
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

func allZero(b []byte) bool {
	var or byte
	for _, c := range b {
		or |= c
	}
	return or == 0
}

// unhexText decodes text into dst: "" is the zero value; otherwise
// exactly 2·len(dst) lowercase hex characters, not all zeros. Errors are
// *RuleError with sentinel's code.
func unhexText(dst, text []byte, what string, sentinel *RuleError) error {
	if len(text) == 0 {
		clear(dst)
		return nil
	}
	if len(text) != 2*len(dst) {
		return ruleErrorf(sentinel, "%s must be %d hex characters, got %d", what, 2*len(dst), len(text))
	}
	if !unhexLower(dst, text) {
		clear(dst)
		return ruleErrorf(sentinel, "%s is not lowercase hex", what)
	}
	if allZero(dst) {
		return ruleErrorf(sentinel, "%s is all zeros", what)
	}
	return nil
}

// unhexLower decodes len(dst) bytes of lowercase hex from text (twice
// as long), by table; false when a character is not lowercase hex.
func unhexLower(dst, text []byte) bool {
	var bad byte
	for i := range dst {
		hi, lo := unhexTable[text[2*i]], unhexTable[text[2*i+1]]
		bad |= hi | lo
		dst[i] = hi<<4 | lo
	}
	return bad&0xf0 == 0
}

// unhexTable maps a lowercase hex digit to its value, anything else to 0xff.
var unhexTable = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
	}
	return t
}()

// Checkpoint names a block by height and hash. Every block whose height is
// a multiple of the genesis's epoch_blocks is a checkpoint.
type Checkpoint struct {
	Height uint64 `json:"height"`
	Hash   Hash   `json:"hash"`
}

// String is "HEIGHT:HASH", the form --checkpoint takes.
func (c Checkpoint) String() string { return fmt.Sprintf("%d:%s", c.Height, c.Hash) }

// Vote is a staker's signed vote for the link Source → Target.
type Vote struct {
	Source    Checkpoint `json:"source"`
	Target    Checkpoint `json:"target"`
	PublicKey PublicKey  `json:"public_key"`
	Signature Signature  `json:"signature"`
}

// Voter is the address of the vote's key.
func (v *Vote) Voter() Address { return AddressOf(v.PublicKey[:]) }

// SigningBytes is what the voter signs:
//
//	"posd/vote/v1" ‖ chain_id ‖ 0x00 ‖ source.height (8) ‖ source.hash (32)
//	‖ target.height (8) ‖ target.hash (32)
//
// heights big endian. The chain id ends at the 0x00, which a chain id never
// holds (Genesis.Validate), so no two chains share a vote's bytes.
func (v *Vote) SigningBytes(chainID string) []byte {
	b := make([]byte, 0, len(voteDomain)+len(chainID)+1+2*(8+32))
	b = append(b, voteDomain...)
	b = append(b, chainID...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint64(b, v.Source.Height)
	b = append(b, v.Source.Hash[:]...)
	b = binary.BigEndian.AppendUint64(b, v.Target.Height)
	b = append(b, v.Target.Hash[:]...)
	return b
}

// ID identifies a vote: SHA-256 of its signing bytes and key. One voter's
// vote for one link has one id however it was signed.
func (v *Vote) ID(chainID string) Hash {
	return sha256.Sum256(append(v.SigningBytes(chainID), v.PublicKey[:]...))
}

// Sign sets the vote's key and signature from priv; set Source and Target first.
func (v *Vote) Sign(chainID string, priv ed25519.PrivateKey) {
	copy(v.PublicKey[:], priv.Public().(ed25519.PublicKey))
	copy(v.Signature[:], ed25519.Sign(priv, v.SigningBytes(chainID)))
}

// CheckStateless checks what a vote must be whatever the chain: its target
// above its source. The signature is checked apart (VerifySignature, or in
// a batch), as for transactions.
func (v *Vote) CheckStateless() error {
	if v.Target.Height <= v.Source.Height {
		return ruleErrorf(ErrBadVote, "target height %d is not above source height %d", v.Target.Height, v.Source.Height)
	}
	return nil
}

// VerifySignature checks the vote's signature by the ZIP-215 rule.
func (v *Vote) VerifySignature(chainID string) error {
	if !verifyZIP215(v.PublicKey[:], v.SigningBytes(chainID), v.Signature[:]) {
		return ruleErrorf(ErrBadVoteSig, "vote by %s for %d→%d", v.Voter(), v.Source.Height, v.Target.Height)
	}
	return nil
}

// MarshalJSON adds the voter's address, for people reading it.
func (v Vote) MarshalJSON() ([]byte, error) {
	type plain Vote
	return json.Marshal(struct {
		Voter Address `json:"voter"`
		plain
	}{v.Voter(), plain(v)})
}

// Vote encoding: fixed size, every field as given.
//
//	version 1 byte (1)
//	source.height 8, source.hash 32, target.height 8, target.hash 32
//	public_key 32, signature 64
const (
	voteCodecVersion = 1
	// EncodedVoteLen is the size of one encoded vote.
	EncodedVoteLen = 1 + 2*(8+32) + 32 + 64
)

// AppendVote appends v's encoding to out.
func AppendVote(out []byte, v *Vote) []byte {
	out = append(out, voteCodecVersion)
	out = binary.BigEndian.AppendUint64(out, v.Source.Height)
	out = append(out, v.Source.Hash[:]...)
	out = binary.BigEndian.AppendUint64(out, v.Target.Height)
	out = append(out, v.Target.Hash[:]...)
	out = append(out, v.PublicKey[:]...)
	return append(out, v.Signature[:]...)
}

// EncodeVote returns v's encoding.
func EncodeVote(v *Vote) []byte { return AppendVote(make([]byte, 0, EncodedVoteLen), v) }

// DecodeVote decodes one vote; data must be exactly one encoded vote.
func DecodeVote(data []byte) (*Vote, error) {
	if len(data) != EncodedVoteLen {
		return nil, fmt.Errorf("%w: vote is %d bytes, want %d", ErrDecode, len(data), EncodedVoteLen)
	}
	if data[0] != voteCodecVersion {
		return nil, fmt.Errorf("%w: vote version %d", ErrDecode, data[0])
	}
	var v Vote
	p := data[1:]
	v.Source.Height = binary.BigEndian.Uint64(p)
	p = p[8+copy(v.Source.Hash[:], p[8:]):]
	v.Target.Height = binary.BigEndian.Uint64(p)
	p = p[8+copy(v.Target.Hash[:], p[8:]):]
	p = p[copy(v.PublicKey[:], p):]
	copy(v.Signature[:], p)
	return &v, nil
}

// VoteRoot commits a header to its block's votes: the Merkle root (as
// TxRoot) over SHA-256 of each vote's encoding. The encoding holds the
// signature, so a relayer cannot swap one valid signature for another
// under the same header. Zero when there are no votes, so headers without
// votes keep their bytes.
func VoteRoot(votes []Vote) Hash {
	if len(votes) == 0 {
		return Hash{}
	}
	ids := make([]Hash, len(votes))
	var buf [EncodedVoteLen]byte
	for i := range votes {
		ids[i] = sha256.Sum256(AppendVote(buf[:0], &votes[i]))
	}
	return MerkleRoot(ids)
}

// Kinds of slashable vote pairs (SlashableVotes).
const (
	// SlashDoubleVote: two different votes of one voter for one target height.
	SlashDoubleVote = "double_vote"
	// SlashSurroundVote: one voter's link strictly inside another of its
	// links: s1 < s2 < t2 < t1 by heights.
	SlashSurroundVote = "surround_vote"
)

// SlashableVotes reports whether a and b, by one voter, are a slashable
// pair (Casper FFG's two commandments), and which kind: a double vote
// (same target height, different votes) or a surround vote (either one's
// link strictly inside the other's). These are exactly the pairs that two
// conflicting justifications force a voter to sign, which is why a third
// of the weight is the line; an honest voter that only raises its target
// and never lowers its source never signs one. Signatures and the chain
// are not checked here. Votes of different keys are never a pair.
func SlashableVotes(a, b *Vote) (kind string, ok bool) {
	if a.PublicKey != b.PublicKey {
		return "", false
	}
	if a.Target.Height == b.Target.Height {
		if a.Source != b.Source || a.Target != b.Target {
			return SlashDoubleVote, true
		}
		return "", false
	}
	if a.Source.Height < b.Source.Height && b.Target.Height < a.Target.Height ||
		b.Source.Height < a.Source.Height && a.Target.Height < b.Target.Height {
		return SlashSurroundVote, true
	}
	return "", false
}
