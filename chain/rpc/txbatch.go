package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/poslab/posd/chain"
)

// ContentTypeTxBatch marks a POST /v1/txs body in the binary batch
// encoding (EncodeTxBatch) instead of JSON.
const ContentTypeTxBatch = "application/octet-stream"

// txBatchVersion is the first byte of a binary batch.
const txBatchVersion = 1

// minEncodedTx is the smallest chain.EncodeTx output (six empty strings
// and three integers): it bounds how many transactions a body can claim.
const minEncodedTx = 6 + 24

// ErrTxBatchTooLarge is returned by DecodeTxBatch for a batch holding more
// transactions than the caller allows.
var ErrTxBatchTooLarge = errors.New("too many transactions in the batch")

// EncodeTxBatch writes txs in the binary batch encoding of POST /v1/txs
// (docs/API.md): a version byte (1), the transaction count as a uvarint,
// then per transaction its length as a uvarint and its chain codec
// encoding (chain.EncodeTx, as inside a block).
func EncodeTxBatch(txs []chain.Transaction) []byte {
	out := make([]byte, 0, 1+binary.MaxVarintLen64+len(txs)*360)
	out = append(out, txBatchVersion)
	out = binary.AppendUvarint(out, uint64(len(txs)))
	var one []byte
	for i := range txs {
		one = chain.AppendTx(one[:0], &txs[i])
		out = binary.AppendUvarint(out, uint64(len(one)))
		out = append(out, one...)
	}
	return out
}

// DecodeTxBatch parses EncodeTxBatch's output, refusing a batch of more
// than max transactions (ErrTxBatchTooLarge). It never panics and never
// allocates more than the body could hold; any malformed input gives an
// error wrapping chain.ErrDecode that says where.
func DecodeTxBatch(data []byte, max int) ([]chain.Transaction, error) {
	txs, refused, err := DecodeTxBatchEach(data, max)
	if err != nil {
		return nil, err
	}
	for i, e := range refused {
		if e != nil {
			return nil, fmt.Errorf("transaction %d: %w", i, e)
		}
	}
	return txs, nil
}

// DecodeTxBatchEach is DecodeTxBatch, but a transaction that is whole and
// only holds a public key or signature that is not the lowercase hex of
// its size does not fail the batch: refused[i] is its error (wrapping
// chain.ErrDecode and the *chain.RuleError, bad_public_key or
// bad_signature) and txs[i] is not to be used. refused is nil when no
// transaction was refused.
func DecodeTxBatchEach(data []byte, max int) (txs []chain.Transaction, refused []error, err error) {
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("%w: empty body", chain.ErrDecode)
	}
	if data[0] != txBatchVersion {
		return nil, nil, fmt.Errorf("%w: batch version %d, want %d", chain.ErrDecode, data[0], txBatchVersion)
	}
	data = data[1:]
	count, n := chain.Uvarint(data)
	if n <= 0 {
		return nil, nil, fmt.Errorf("%w: bad transaction count", chain.ErrDecode)
	}
	data = data[n:]
	if count > uint64(max) {
		return nil, nil, fmt.Errorf("%w: %d, the limit is %d", ErrTxBatchTooLarge, count, max)
	}
	if count > uint64(len(data)/(minEncodedTx+1)) {
		return nil, nil, fmt.Errorf("%w: %d transactions cannot fit in %d bytes", chain.ErrDecode, count, len(data))
	}
	txs = make([]chain.Transaction, count)
	for i := range txs {
		l, n := chain.Uvarint(data)
		if n <= 0 || l > uint64(len(data)-n) {
			return nil, nil, fmt.Errorf("%w: transaction %d: bad or truncated length", chain.ErrDecode, i)
		}
		data = data[n:]
		if err := chain.DecodeTxInto(data[:l], &txs[i]); err != nil {
			var re *chain.RuleError
			if !errors.As(err, &re) {
				return nil, nil, fmt.Errorf("transaction %d: %w", i, err)
			}
			if refused == nil {
				refused = make([]error, len(txs))
			}
			refused[i] = err
		}
		data = data[l:]
	}
	if len(data) != 0 {
		return nil, nil, fmt.Errorf("%w: %d trailing bytes", chain.ErrDecode, len(data))
	}
	return txs, refused, nil
}

// BlockTxIDs is one main-chain block of GET /v1/blocks/txids: its place
// and the ids of its transactions, in block order, without the bodies. A
// client learning which of its transactions committed reads these instead
// of whole blocks.
type BlockTxIDs struct {
	Height   uint64       `json:"height"`
	Hash     chain.Hash   `json:"hash"`
	PrevHash chain.Hash   `json:"prev_hash"`
	TxIDs    []chain.Hash `json:"tx_ids"`
}
