package chain

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The binary block encoding is what the store writes and peers exchange. It
// is lossless (every field as given, so a malformed block decodes and is then
// rejected by validation with the right code) and about four times smaller
// and faster than JSON. Layout, all integers big endian:
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
// Version 2 added seed_proof and seed.
const blockCodecVersion = 2

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
	n := 1 + 8 + 32 + 8 + 4 + 32 + 32 + 5*binary.MaxVarintLen64 + len(h.Forger) + len(h.ForgerPublicKey) + len(h.SeedProof) + len(h.Signature)
	n += len(b.Transactions) * (24 + 6*2 + 10 + 40 + 40 + 64 + 128 + 16)
	out := make([]byte, 0, n)
	out = append(out, blockCodecVersion)
	out = h.appendFields(out)
	out = appendString(out, h.Signature)
	out = binary.AppendUvarint(out, uint64(len(b.Transactions)))
	for i := range b.Transactions {
		out = appendTx(out, &b.Transactions[i])
	}
	return out
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
	out = appendString(out, tx.PublicKey)
	return appendString(out, tx.Signature)
}

// DecodeBlock parses EncodeBlock's output. It never panics; any input that is
// not exactly one encoded block gives an error wrapping ErrDecode.
func DecodeBlock(data []byte) (*Block, error) {
	d := decoder{buf: data}
	if v := d.byte(); d.err == nil && v != blockCodecVersion {
		return nil, fmt.Errorf("%w: version %d", ErrDecode, v)
	}
	b := &Block{}
	h := &b.Header
	h.Height = d.u64()
	d.bytes(h.PrevHash[:])
	h.Timestamp = int64(d.u64())
	h.Forger = Address(d.str())
	h.ForgerPublicKey = d.str()
	h.Rank = d.u32()
	d.bytes(h.TxRoot[:])
	h.SeedProof = d.str()
	d.bytes(h.Seed[:])
	h.Signature = d.str()
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
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrDecode, len(d.buf))
	}
	if d.err != nil {
		return nil, d.err
	}
	return b, nil
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
	return d.err
}

// decoder reads from buf, remembering the first error; after an error every
// read returns zero values, so callers check err once at the end.
type decoder struct {
	buf []byte
	err error
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
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad length", ErrDecode)
		return 0
	}
	d.buf = d.buf[n:]
	return v
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

func (d *decoder) tx(tx *Transaction) {
	tx.Type = TxType(d.str())
	tx.ChainID = d.str()
	tx.From = Address(d.str())
	tx.To = Address(d.str())
	tx.Amount = d.u64()
	tx.Fee = d.u64()
	tx.Nonce = d.u64()
	tx.PublicKey = d.str()
	tx.Signature = d.str()
}
