package chain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
)

// Domain prefixes keep a signature made for one kind of message from ever
// verifying as another: a transaction's signing bytes can never be read as a
// block header's, and neither as any other protocol's.
const (
	txDomain      = "posd/tx/v1\x00"
	headerDomain  = "posd/header/v2\x00"
	genesisDomain = "posd/genesis/v1\x00"
)

// SigningBytes returns the canonical encoding of every field of tx but the
// signature. This is what the sender signs and what the id hashes:
//
//	"posd/tx/v1" 0x00
//	type       1 byte   (EXCHANGE 1, TRANSFER 2, STAKE 3, UNSTAKE 4, unknown 0)
//	chain_id   uvarint length, bytes
//	from       uvarint length, bytes (the 40 hex characters as written)
//	to         uvarint length, bytes
//	amount     8 bytes big endian
//	fee        8 bytes big endian
//	nonce      8 bytes big endian
//	public_key uvarint length, bytes (the 64 lowercase hex characters of
//	           the key; length 0 when there is none)
//
// Strings are length-prefixed, so no two different transactions share an
// encoding, even malformed ones (validation rejects those separately).
func (tx *Transaction) SigningBytes() []byte {
	n := len(txDomain) + 1 + 4*binary.MaxVarintLen64 + len(tx.ChainID) + len(tx.From) + len(tx.To) + 24 + 2*len(tx.PublicKey)
	return tx.appendSigningBytes(make([]byte, 0, n))
}

// appendSigningBytes appends SigningBytes to b.
func (tx *Transaction) appendSigningBytes(b []byte) []byte {
	b = append(b, txDomain...)
	code, _ := tx.Type.code()
	b = append(b, code)
	b = appendString(b, tx.ChainID)
	b = appendString(b, string(tx.From))
	b = appendString(b, string(tx.To))
	b = binary.BigEndian.AppendUint64(b, tx.Amount)
	b = binary.BigEndian.AppendUint64(b, tx.Fee)
	b = binary.BigEndian.AppendUint64(b, tx.Nonce)
	// The key's hex, encoded here from the bytes: what it always was.
	return appendHexField(b, tx.PublicKey[:])
}

// ID is the SHA-256 of the signing bytes. The signature is left out so a
// transaction has one id however it was signed (Ed25519 is deterministic anyway).
// The id is computed once, where the transaction is signed or decoded, and
// cached in it; a transaction built field by field and never signed or
// decoded has no cached id and is hashed on each call. ID never writes the
// cache, so transactions shared between goroutines stay read-only.
func (tx *Transaction) ID() Hash {
	if tx.id != (Hash{}) {
		return tx.id
	}
	return sha256.Sum256(tx.SigningBytes())
}

// CacheID computes the id from the fields as they are now and caches it.
// The decoders and Sign call it; code that changes a field of a transaction
// after that (a test forging a variant) calls it again.
func (tx *Transaction) CacheID() {
	// A buffer on the stack: a valid transaction's signing bytes fit, so
	// decoding a block allocates nothing more per transaction for its id.
	var buf [256]byte
	tx.id = sha256.Sum256(tx.appendSigningBytes(buf[:0]))
}

// Sign fills public_key, from and signature from priv, and caches the id.
// The caller sets every other field first.
func (tx *Transaction) Sign(priv ed25519.PrivateKey) {
	pub := priv.Public().(ed25519.PublicKey)
	tx.PublicKey = PublicKey(pub)
	tx.From = AddressOf(pub)
	sb := tx.SigningBytes()
	tx.id = sha256.Sum256(sb)
	tx.Signature = Signature(ed25519.Sign(priv, sb))
}

// MarshalJSON writes the transaction with its id, so every JSON view of a
// transaction (API, CLI) names it the same way. The id is ignored on input.
func (tx Transaction) MarshalJSON() ([]byte, error) {
	type plain Transaction
	return json.Marshal(struct {
		ID Hash `json:"id"`
		plain
	}{tx.ID(), plain(tx)})
}

// UnmarshalJSON reads what MarshalJSON writes and caches the id computed
// from the fields read (an "id" in the input is ignored, never trusted).
func (tx *Transaction) UnmarshalJSON(data []byte) error {
	type plain Transaction
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*tx = Transaction(p)
	tx.CacheID()
	return nil
}

// SigningBytes returns the canonical header encoding without the signature:
//
//	"posd/header/v2" 0x00
//	height            8 bytes big endian
//	prev_hash         32 bytes
//	timestamp         8 bytes big endian (two's complement)
//	forger            uvarint length, bytes
//	forger_public_key uvarint length, bytes (the lowercase hex; length 0
//	                  in block 0, which has no forger)
//	rank              4 bytes big endian
//	tx_root           32 bytes
//	seed_proof        uvarint length, bytes (the lowercase hex; length 0
//	                  in block 0, which has no proof)
//	seed              32 bytes
//	evidence_root     32 bytes, only when it or vote_root is not zero
//	vote_root         32 bytes, only when not zero (the block has votes)
//
// v2 added seed_proof and seed (the v2 rules, docs/CONSENSUS.md: the VRF seed), and then
// evidence_root, left out when zero so blocks without evidence kept their
// bytes and hashes. v3 added vote_root the same way; with a vote root the
// evidence root is always written, even zero, so a header with only an
// evidence root and one with only a vote root never share their bytes.
func (h *Header) SigningBytes() []byte {
	b := make([]byte, 0, len(headerDomain)+8+32+8+3*binary.MaxVarintLen64+len(h.Forger)+2*len(h.ForgerPublicKey)+4+32+2*len(h.SeedProof)+64)
	return h.appendFields(append(b, headerDomain...))
}

// appendFields appends every header field but the signature, as the
// signing bytes have them: the evidence root only when it is not zero.
func (h *Header) appendFields(b []byte) []byte {
	b = h.appendCore(b)
	if !h.EvidenceRoot.IsZero() || !h.VoteRoot.IsZero() {
		b = append(b, h.EvidenceRoot[:]...)
	}
	if !h.VoteRoot.IsZero() {
		b = append(b, h.VoteRoot[:]...)
	}
	return b
}

// appendCore appends every header field but the evidence root and the
// signature, in the order the signing bytes and the block codec use.
func (h *Header) appendCore(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, h.Height)
	b = append(b, h.PrevHash[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Timestamp))
	b = appendString(b, string(h.Forger))
	b = appendHexField(b, h.ForgerPublicKey[:])
	b = binary.BigEndian.AppendUint32(b, h.Rank)
	b = append(b, h.TxRoot[:]...)
	b = appendHexField(b, h.SeedProof[:])
	return append(b, h.Seed[:]...)
}

// Hash is the SHA-256 of the header's signing bytes.
func (h *Header) Hash() Hash { return sha256.Sum256(h.SigningBytes()) }

// Sign fills forger and forger_public_key from priv; on a header made by
// NewBlock it also proves the seed (seed_proof and seed, see ProveSeed);
// then it signs. A header not made by NewBlock keeps the seed fields it has
// (set them with ProveSeed first).
func (h *Header) Sign(priv ed25519.PrivateKey) {
	pub := priv.Public().(ed25519.PublicKey)
	h.ForgerPublicKey = PublicKey(pub)
	h.Forger = AddressOf(pub)
	if h.vrf != nil {
		h.ProveSeed(priv, h.vrf.chainID, h.vrf.parentSeed)
	}
	h.vrf = nil
	h.Signature = hex.EncodeToString(ed25519.Sign(priv, h.SigningBytes()))
}

// MarshalJSON writes the block with its hash first, so API and CLI output
// name a block the way peers do.
func (b Block) MarshalJSON() ([]byte, error) {
	type plainHeader Header
	txs := b.Transactions
	if txs == nil {
		txs = []Transaction{}
	}
	return json.Marshal(struct {
		Hash Hash `json:"hash"`
		plainHeader
		Transactions []Transaction `json:"transactions"`
		Evidence     []Evidence    `json:"evidence,omitempty"`
		Votes        []Vote        `json:"votes,omitempty"`
	}{b.Header.Hash(), plainHeader(b.Header), txs, b.Evidence, b.Votes})
}

// UnmarshalJSON reads what MarshalJSON writes (the hash is recomputed, not trusted).
func (b *Block) UnmarshalJSON(data []byte) error {
	type plainHeader Header
	var v struct {
		plainHeader
		Transactions []Transaction `json:"transactions"`
		Evidence     []Evidence    `json:"evidence"`
		Votes        []Vote        `json:"votes"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	b.Header = Header(v.plainHeader)
	b.Transactions = v.Transactions
	b.Evidence = v.Evidence
	b.Votes = v.Votes
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// TxRoot is the Merkle root of the transaction ids, built as in RFC 6962:
// leaves are SHA-256(0x00 ‖ id), inner nodes SHA-256(0x01 ‖ left ‖ right),
// the split at the largest power of two below n, and the empty tree hashes
// the empty string. The prefixes stop a leaf from posing as an inner node.
func TxRoot(txs []Transaction) Hash {
	ids := make([]Hash, len(txs))
	for i := range txs {
		ids[i] = txs[i].ID()
	}
	return MerkleRoot(ids)
}

// MerkleRoot is TxRoot over precomputed ids.
func MerkleRoot(ids []Hash) Hash {
	if len(ids) == 0 {
		return sha256.Sum256(nil)
	}
	level := make([]Hash, len(ids))
	var buf [65]byte
	for i, id := range ids {
		buf[0] = 0
		copy(buf[1:], id[:])
		level[i] = sha256.Sum256(buf[:33])
	}
	return merkle(level, &buf)
}

func merkle(nodes []Hash, buf *[65]byte) Hash {
	if len(nodes) == 1 {
		return nodes[0]
	}
	k := 1
	for k*2 < len(nodes) {
		k *= 2
	}
	l, r := merkle(nodes[:k], buf), merkle(nodes[k:], buf)
	buf[0] = 1
	copy(buf[1:33], l[:])
	copy(buf[33:], r[:])
	return sha256.Sum256(buf[:])
}
