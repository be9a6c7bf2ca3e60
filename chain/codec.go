package chain

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The binary block encoding is what the store writes and peers exchange. It
// is lossless (every field as given, so a malformed block decodes and is then
// rejected by validation with the right code) and about four times smaller
// and faster than JSON. Keys, signatures and seed proofs are the exception:
// they are bytes inside (PublicKey), so one that is not "" or the lowercase
// hex of its size is refused here, with an error that wraps ErrDecode and
// the rule error validation gave it before (bad_public_key, bad_signature,
// wrong_forger, bad_seed_proof). Layout, all integers big endian:
//
//	version    1 byte (2)
//	height     8, prev_hash 32, timestamp 8
//	forger, forger_public_key  uvarint length + bytes
//	rank       4, tx_root 32
//	seed_proof uvarint length + bytes, seed 32
//	signature  uvarint length + bytes
//	tx count   uvarint
//	per tx:    type, chain_id, from, to (length + bytes each),
//	           amount 8, fee 8, nonce 8, public_key, signature (length + bytes)
//
// Version 2 added seed_proof and seed. Version 3, written only for blocks
// with evidence (or an evidence root), adds after seed:
//
//	evidence_root 32
//
// and after the transactions:
//
//	evidence count uvarint
//	per item:  parent_seed 32, then headers a and b, each: the header
//	           fields as above (with evidence_root) and signature
//
// so every block without evidence keeps its version 2 bytes.
//
// Version 4, written only for blocks with votes or a vote root (theirs, or
// in a header of their evidence), writes every header (the block's and the
// evidence's) as the fields above, evidence_root 32, vote_root 32 and the
// signature, and after the evidence:
//
//	vote count uvarint (at most MaxBlockVotesLimit)
//	per vote:  its fixed-size encoding (EncodeVote)
//
// and each of its evidence items starts with a kind byte:
//
//	per item:  kind 1 (1 equivocation, 2 double_vote, 3 surround_vote),
//	           then for an equivocation parent_seed 32 and the two
//	           headers as above, for a vote kind the two votes
//	           (EncodedVoteLen bytes each, AppendVote)
//
// Version 4 is written for blocks with votes, a vote root (theirs or in a
// header of their evidence) or evidence of a vote kind, so every block
// without any of those keeps its version 2 or 3 bytes.
const (
	blockCodecVersion    = 2
	evidenceCodecVersion = 3
	votesCodecVersion    = 4
)

// voteEvidenceLen is the size of one encoded vote evidence item: its kind
// byte and two votes.
const voteEvidenceLen = 1 + 2*EncodedVoteLen

// minEvidenceLen is the smallest encoding of one evidence item.
const minEvidenceLen = 32 + 2*(8+32+8+1+1+4+32+1+32+32+1)

// maxFieldLen bounds every string in an encoded block: real fields are at
// most 128 bytes, so anything longer is garbage and is refused before it
// costs memory.
const maxFieldLen = 256

// minTxLen is the smallest encoding of one transaction (empty strings).
const minTxLen = 6 + 24

// ErrDecode is wrapped by every decoding failure.
var ErrDecode = errors.New("malformed block encoding")

// EncodeBlock returns the binary encoding of b.
func EncodeBlock(b *Block) []byte {
	h := &b.Header
	n := 1 + 8 + 32 + 8 + 4 + 32 + 32 + 5*binary.MaxVarintLen64 + len(h.Forger) + 2*len(h.ForgerPublicKey) + 2*len(h.SeedProof) + len(h.Signature)
	n += len(b.Transactions) * (24 + 6*2 + 10 + 40 + 40 + 64 + 128 + 16)
	version := b.codecVersion()
	if version >= evidenceCodecVersion {
		n += 64 + 2*binary.MaxVarintLen64 + len(b.Evidence)*1100 + len(b.Votes)*EncodedVoteLen
	}
	out := make([]byte, 0, n)
	out = append(out, version)
	switch version {
	case blockCodecVersion:
		out = h.appendFields(out)
		out = appendString(out, h.Signature)
	case evidenceCodecVersion:
		out = h.appendV3(out)
	default:
		out = h.appendV4(out)
	}
	out = binary.AppendUvarint(out, uint64(len(b.Transactions)))
	for i := range b.Transactions {
		out = appendTx(out, &b.Transactions[i])
	}
	if version >= evidenceCodecVersion {
		out = binary.AppendUvarint(out, uint64(len(b.Evidence)))
		for i := range b.Evidence {
			e := &b.Evidence[i]
			if version == evidenceCodecVersion {
				out = append(out, e.ParentSeed[:]...)
				out = e.A.appendV3(out)
				out = e.B.appendV3(out)
				continue
			}
			out = append(out, e.KindOf().code())
			if e.KindOf().isVote() {
				out = AppendVote(out, &e.VoteA)
				out = AppendVote(out, &e.VoteB)
				continue
			}
			out = append(out, e.ParentSeed[:]...)
			out = e.A.appendV4(out)
			out = e.B.appendV4(out)
		}
	}
	if version == votesCodecVersion {
		out = binary.AppendUvarint(out, uint64(len(b.Votes)))
		for i := range b.Votes {
			out = AppendVote(out, &b.Votes[i])
		}
	}
	return out
}

// codecVersion is the oldest version that holds every field of b: one
// block has one encoding.
func (b *Block) codecVersion() byte {
	if b.hasVoteFields() {
		return votesCodecVersion
	}
	if len(b.Evidence) > 0 || !b.EvidenceRoot.IsZero() {
		return evidenceCodecVersion
	}
	return blockCodecVersion
}

// hasVoteFields reports whether b has votes or a vote root, itself or in
// a header of its evidence, or evidence of a vote kind: what only version
// 4 can write.
func (b *Block) hasVoteFields() bool {
	if len(b.Votes) > 0 || !b.VoteRoot.IsZero() {
		return true
	}
	for i := range b.Evidence {
		e := &b.Evidence[i]
		if e.KindOf().isVote() || !e.A.VoteRoot.IsZero() || !e.B.VoteRoot.IsZero() {
			return true
		}
	}
	return false
}

// appendV3 appends a header as version 3 writes it: every field, the
// evidence root always, then the signature.
func (h *Header) appendV3(out []byte) []byte {
	out = h.appendCore(out)
	out = append(out, h.EvidenceRoot[:]...)
	return appendString(out, h.Signature)
}

// headerV3 reads what appendV3 writes.
func (d *decoder) headerV3(h *Header) {
	d.core(h)
	d.bytes(h.EvidenceRoot[:])
	h.Signature = d.str()
}

// core reads what appendCore writes.
func (d *decoder) core(h *Header) {
	h.Height = d.u64()
	d.bytes(h.PrevHash[:])
	h.Timestamp = int64(d.u64())
	h.Forger = Address(d.str())
	d.hexField(h.ForgerPublicKey[:], "forger_public_key", ErrWrongForger)
	h.Rank = d.u32()
	d.bytes(h.TxRoot[:])
	d.hexField(h.SeedProof[:], "seed_proof", ErrBadSeedProof)
	d.bytes(h.Seed[:])
}

// appendV4 appends a header as version 4 writes it: every field, both
// roots always, then the signature.
func (h *Header) appendV4(out []byte) []byte {
	out = h.appendCore(out)
	out = append(out, h.EvidenceRoot[:]...)
	out = append(out, h.VoteRoot[:]...)
	return appendString(out, h.Signature)
}

// headerV4 reads what appendV4 writes.
func (d *decoder) headerV4(h *Header) {
	d.core(h)
	d.bytes(h.EvidenceRoot[:])
	d.bytes(h.VoteRoot[:])
	h.Signature = d.str()
}

// vote reads one encoded vote (DecodeVote's checks).
func (d *decoder) vote(v *Vote) {
	if !d.need(EncodedVoteLen) {
		return
	}
	got, err := DecodeVote(d.buf[:EncodedVoteLen])
	if err != nil {
		d.err = err
		return
	}
	*v = *got
	d.buf = d.buf[EncodedVoteLen:]
}

// EncodeTx returns the binary encoding of one transaction (as inside a block).
func EncodeTx(tx *Transaction) []byte { return appendTx(nil, tx) }

// AppendTx appends the binary encoding of tx to out (no allocation when
// out has room).
func AppendTx(out []byte, tx *Transaction) []byte { return appendTx(out, tx) }

func appendTx(out []byte, tx *Transaction) []byte {
	out = appendString(out, string(tx.Type))
	out = appendString(out, tx.ChainID)
	out = appendString(out, string(tx.From))
	out = appendString(out, string(tx.To))
	out = binary.BigEndian.AppendUint64(out, tx.Amount)
	out = binary.BigEndian.AppendUint64(out, tx.Fee)
	out = binary.BigEndian.AppendUint64(out, tx.Nonce)
	out = appendHexField(out, tx.PublicKey[:])
	return appendHexField(out, tx.Signature[:])
}

// EncodedLen is len(EncodeTx(tx)), without encoding it.
func (tx *Transaction) EncodedLen() int {
	n := 3*8 + hexFieldLen(tx.PublicKey[:]) + hexFieldLen(tx.Signature[:])
	for _, l := range [...]int{len(tx.Type), len(tx.ChainID), len(tx.From), len(tx.To)} {
		n += uvarintLen(uint64(l)) + l
	}
	return n
}

// DecodeBlock parses EncodeBlock's output. It never panics; any input that is
// not exactly one encoded block gives an error wrapping ErrDecode.
func DecodeBlock(data []byte) (*Block, error) {
	d := decoder{buf: data}
	b := &Block{}
	v := d.header(&b.Header)
	if d.err == nil && v == 0 {
		return nil, fmt.Errorf("%w: version %d", ErrDecode, data[0])
	}
	count := d.uvarint()
	if d.err == nil && count > uint64(len(d.buf)/minTxLen) {
		return nil, fmt.Errorf("%w: %d transactions cannot fit in %d bytes", ErrDecode, count, len(d.buf))
	}
	if count > 0 {
		b.Transactions = make([]Transaction, count)
	}
	for i := range b.Transactions {
		d.tx(&b.Transactions[i])
	}
	if v >= evidenceCodecVersion {
		n := d.uvarint()
		minLen := minEvidenceLen
		if v == votesCodecVersion {
			minLen = voteEvidenceLen
		}
		if d.err == nil && n > uint64(len(d.buf)/minLen) {
			return nil, fmt.Errorf("%w: %d evidence items cannot fit in %d bytes", ErrDecode, n, len(d.buf))
		}
		if n > 0 {
			b.Evidence = make([]Evidence, n)
		}
		for i := range b.Evidence {
			e := &b.Evidence[i]
			if v == evidenceCodecVersion {
				d.bytes(e.ParentSeed[:])
				d.headerV3(&e.A)
				d.headerV3(&e.B)
				continue
			}
			c := d.byte()
			k, ok := kindOfCode(c)
			if !ok && d.err == nil {
				d.err = fmt.Errorf("%w: evidence kind %d", ErrDecode, c)
			}
			e.Kind = k
			if k.isVote() {
				d.vote(&e.VoteA)
				d.vote(&e.VoteB)
				continue
			}
			d.bytes(e.ParentSeed[:])
			d.headerV4(&e.A)
			d.headerV4(&e.B)
		}
	}
	if v == votesCodecVersion {
		n := d.uvarint()
		switch {
		case d.err != nil:
		case n > MaxBlockVotesLimit:
			// Whatever the genesis allows, no block holds more: refused
			// before anything is allocated for them.
			return nil, fmt.Errorf("%w: %d votes (limit %d)", ErrDecode, n, MaxBlockVotesLimit)
		case n > uint64(len(d.buf)/EncodedVoteLen):
			return nil, fmt.Errorf("%w: %d votes cannot fit in %d bytes", ErrDecode, n, len(d.buf))
		}
		if n > 0 && d.err == nil {
			b.Votes = make([]Vote, n)
		}
		for i := range b.Votes {
			if !d.need(EncodedVoteLen) {
				break
			}
			vote, err := DecodeVote(d.buf[:EncodedVoteLen])
			if err != nil {
				d.err = err
				break
			}
			b.Votes[i] = *vote
			d.buf = d.buf[EncodedVoteLen:]
		}
	}
	if d.err == nil && b.codecVersion() != v {
		// An older version says this; one block, one encoding.
		return nil, fmt.Errorf("%w: version %d for a block that version %d writes", ErrDecode, v, b.codecVersion())
	}
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrDecode, len(d.buf))
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return b, nil
}

// header reads the version byte and the header of an encoded block and
// returns the version, 0 when it is none a block has (with d.err set only
// if the data ran out).
func (d *decoder) header(h *Header) byte {
	v := d.byte()
	if d.err != nil {
		return 0
	}
	switch v {
	case evidenceCodecVersion:
		d.headerV3(h)
	case votesCodecVersion:
		d.headerV4(h)
	case blockCodecVersion:
		d.core(h)
		h.Signature = d.str()
	default:
		return 0
	}
	return v
}

// DecodeHeader decodes only the header of an encoded block (EncodeBlock's
// output): what a reader of heights, hashes and links needs, without
// reading or allocating the transactions. The rest of data is not looked
// at, so a block DecodeBlock refuses for its body may pass here.
func DecodeHeader(data []byte) (*Header, error) {
	d := decoder{buf: data}
	h := &Header{}
	v := d.header(h)
	if err := d.done(); err != nil {
		return nil, err
	}
	if v == 0 {
		return nil, fmt.Errorf("%w: version %d", ErrDecode, data[0])
	}
	return h, nil
}

// DecodeTx parses EncodeTx's output.
func DecodeTx(data []byte) (*Transaction, error) {
	tx := &Transaction{}
	if err := DecodeTxInto(data, tx); err != nil {
		return nil, err
	}
	return tx, nil
}

// DecodeTxInto parses EncodeTx's output into tx (a batch decodes into one
// slice, not one allocation per transaction).
func DecodeTxInto(data []byte, tx *Transaction) error {
	d := decoder{buf: data}
	d.tx(tx)
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrDecode, len(d.buf))
	}
	return d.done()
}

// decoder reads from buf, remembering the first error; after an error every
// read returns zero values, so callers check err once at the end.
type decoder struct {
	buf []byte
	err error
	// rule is the first key, signature or proof refused (hexField): the
	// decoding goes on, so a structural error still wins; done returns it.
	rule error
}

// done is the decoding's error: the first structural one, else the first
// refused field's.
func (d *decoder) done() error {
	if d.err != nil {
		return d.err
	}
	return d.rule
}

func (d *decoder) need(n int) bool {
	if d.err != nil {
		return false
	}
	if len(d.buf) < n {
		d.err = fmt.Errorf("%w: truncated", ErrDecode)
		return false
	}
	return true
}

func (d *decoder) byte() byte {
	if !d.need(1) {
		return 0
	}
	v := d.buf[0]
	d.buf = d.buf[1:]
	return v
}

func (d *decoder) u64() uint64 {
	if !d.need(8) {
		return 0
	}
	v := binary.BigEndian.Uint64(d.buf)
	d.buf = d.buf[8:]
	return v
}

func (d *decoder) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	v := binary.BigEndian.Uint32(d.buf)
	d.buf = d.buf[4:]
	return v
}

func (d *decoder) bytes(dst []byte) {
	if !d.need(len(dst)) {
		return
	}
	copy(dst, d.buf)
	d.buf = d.buf[len(dst):]
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := Uvarint(d.buf)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad length", ErrDecode)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// Uvarint is binary.Uvarint refusing a value not written in its shortest
// form (n = -1), as binary.AppendUvarint writes it: the codecs are
// canonical, so one block or batch has one encoding, and gossip (whose
// message ids hash the bytes) cannot be fed padded copies of a message as
// new ones. n is 0 when buf is too short, negative on overflow, as
// binary.Uvarint's.
func Uvarint(buf []byte) (uint64, int) {
	v, n := binary.Uvarint(buf)
	if n > 1 && buf[n-1] == 0 {
		return 0, -1 // a trailing 0x00 continues nothing: padded
	}
	return v, n
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > maxFieldLen {
		d.err = fmt.Errorf("%w: field of %d bytes (limit %d)", ErrDecode, n, maxFieldLen)
		return ""
	}
	if !d.need(int(n)) {
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

// hexField reads a key, signature or proof written as appendHexField
// writes it into dst (zeroed when the field is empty). Anything but ""
// or the lowercase hex of len(dst) bytes, not all zeros, is an error
// wrapping ErrDecode and a rule error with sentinel's code.
func (d *decoder) hexField(dst []byte, what string, sentinel *RuleError) {
	n := d.uvarint()
	if d.err != nil {
		return
	}
	if n > maxFieldLen {
		d.err = fmt.Errorf("%w: field of %d bytes (limit %d)", ErrDecode, n, maxFieldLen)
		return
	}
	if !d.need(int(n)) {
		return
	}
	text := d.buf[:n]
	d.buf = d.buf[n:]
	if err := unhexText(dst, text, what, sentinel); err != nil && d.rule == nil {
		d.rule = fmt.Errorf("%w: %w", ErrDecode, err)
	}
}

func (d *decoder) tx(tx *Transaction) {
	tx.Type = TxType(d.str())
	tx.ChainID = d.str()
	tx.From = Address(d.str())
	tx.To = Address(d.str())
	tx.Amount = d.u64()
	tx.Fee = d.u64()
	tx.Nonce = d.u64()
	d.hexField(tx.PublicKey[:], "public key", ErrBadPublicKey)
	d.hexField(tx.Signature[:], "signature", ErrBadSignature)
	tx.id = Hash{}
	if d.err == nil && d.rule == nil {
		// Hashed once here, where the bytes come in; every later ID
		// (pool, tx root, index) reads the cache.
		tx.CacheID()
	}
}

// EncodeEvidence returns the binary encoding of one evidence item, for
// gossip. An equivocation is written as inside a version 3 block, and when
// a header has a vote root, the two vote roots (a's, b's) follow; a vote
// kind is its kind byte and the two votes (voteEvidenceLen bytes, shorter
// than any valid equivocation, so the length tells them apart).
func EncodeEvidence(e *Evidence) []byte {
	if e.KindOf().isVote() {
		out := append(make([]byte, 0, voteEvidenceLen), e.KindOf().code())
		out = AppendVote(out, &e.VoteA)
		return AppendVote(out, &e.VoteB)
	}
	out := make([]byte, 0, 1024+64)
	out = append(out, e.ParentSeed[:]...)
	out = e.A.appendV3(out)
	out = e.B.appendV3(out)
	if !e.A.VoteRoot.IsZero() || !e.B.VoteRoot.IsZero() {
		// Headers of blocks with votes: their vote roots follow, so the
		// headers (and their signatures) survive the trip.
		out = append(out, e.A.VoteRoot[:]...)
		out = append(out, e.B.VoteRoot[:]...)
	}
	return out
}

// DecodeEvidence parses EncodeEvidence's output; it never panics.
func DecodeEvidence(data []byte) (*Evidence, error) {
	d := decoder{buf: data}
	e := &Evidence{}
	if len(data) == voteEvidenceLen {
		k, ok := kindOfCode(d.byte())
		if !ok || !k.isVote() {
			return nil, fmt.Errorf("%w: vote evidence kind %d", ErrDecode, data[0])
		}
		e.Kind = k
		d.vote(&e.VoteA)
		d.vote(&e.VoteB)
		if d.err != nil {
			return nil, d.err
		}
		return e, nil
	}
	d.bytes(e.ParentSeed[:])
	d.headerV3(&e.A)
	d.headerV3(&e.B)
	if d.err == nil && len(d.buf) == 64 {
		d.bytes(e.A.VoteRoot[:])
		d.bytes(e.B.VoteRoot[:])
		if e.A.VoteRoot.IsZero() && e.B.VoteRoot.IsZero() {
			return nil, fmt.Errorf("%w: zero vote roots written out", ErrDecode)
		}
	}
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrDecode, len(d.buf))
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return e, nil
}
