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
type PublicKey [ed25519.PublicKeySize]byte

// Signature is a 64-byte Ed25519 signature; JSON and text carry its hex.
type Signature [ed25519.SignatureSize]byte

// String returns the lowercase hex of k.
func (k PublicKey) String() string { return hex.EncodeToString(k[:]) }

// MarshalText encodes k as lowercase hex.
func (k PublicKey) MarshalText() ([]byte, error) { return hexText(k[:]), nil }

// UnmarshalText decodes 64 hex characters.
func (k *PublicKey) UnmarshalText(b []byte) error { return unhexFixed(k[:], b, "public key") }

// String returns the lowercase hex of s.
func (s Signature) String() string { return hex.EncodeToString(s[:]) }

// MarshalText encodes s as lowercase hex.
func (s Signature) MarshalText() ([]byte, error) { return hexText(s[:]), nil }

// UnmarshalText decodes 128 hex characters.
func (s *Signature) UnmarshalText(b []byte) error { return unhexFixed(s[:], b, "signature") }

func hexText(b []byte) []byte {
	out := make([]byte, 2*len(b))
	hex.Encode(out, b)
	return out
}

func unhexFixed(dst, text []byte, what string) error {
	if len(text) != 2*len(dst) {
		return fmt.Errorf("%s must be %d hex characters, got %d", what, 2*len(dst), len(text))
	}
	if _, err := hex.Decode(dst, text); err != nil {
		return fmt.Errorf("%s is not hex: %w", what, err)
	}
	return nil
}

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
