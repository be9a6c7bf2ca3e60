package rpc

import (
	"encoding/binary"
	"fmt"

	"github.com/poslab/posd/chain"
)

// The binary answer to a binary batch (POST /v1/txs with Content-Type and
// Accept application/octet-stream; docs/API.md): the same results as the
// JSON answer, one per transaction in order, without JSON's cost on either
// side. A loader's 500-transfer batch got a 45 KB JSON answer, hex ids
// and all: decoding those answers was a tenth of `poscli load`'s CPU.
//
//	version  1 byte: 1
//	count    uvarint: the number of results
//	per result, a kind byte, then:
//	  0 pending: id (32 bytes)
//	  1 refused: id (32 bytes), code, message
//	  2 refused before it had an id: code, message
//	code and message: uvarint length + UTF-8 bytes
const txResultsVersion = 1

// Kinds of result in the binary answer.
const (
	resultPending   = 0
	resultRefused   = 1
	resultRefusedNo = 2 // refused, no id
)

// Bounds of a refusal's text in the binary answer: a code is a short
// identifier, a message a sentence. The encoder cuts longer ones (a node
// writes none that long) so that what it writes always decodes.
const (
	maxResultCode    = 64
	maxResultMessage = 1024
)

// minEncodedResult is the smallest result (a refusal without id, empty
// code and message): it bounds how many results a body can claim.
const minEncodedResult = 3

// EncodeTxResults writes results in the binary answer encoding. A result
// is pending when it has an id and no error; any result with an error is
// a refusal.
func EncodeTxResults(results []SubmitResult) []byte {
	out := make([]byte, 0, 1+binary.MaxVarintLen64+len(results)*(1+len(chain.Hash{})))
	out = append(out, txResultsVersion)
	out = binary.AppendUvarint(out, uint64(len(results)))
	for _, r := range results {
		switch {
		case r.Error == nil && r.ID != nil:
			out = append(out, resultPending)
			out = append(out, r.ID[:]...)
			continue
		case r.ID != nil:
			out = append(out, resultRefused)
			out = append(out, r.ID[:]...)
		default:
			out = append(out, resultRefusedNo)
		}
		var e Error
		if r.Error != nil {
			e = *r.Error
		}
		out = appendText(out, e.Code, maxResultCode)
		out = appendText(out, e.Message, maxResultMessage)
	}
	return out
}

// appendText appends s, cut to max bytes, as uvarint length + bytes.
func appendText(out []byte, s string, max int) []byte {
	s = s[:min(len(s), max)]
	out = binary.AppendUvarint(out, uint64(len(s)))
	return append(out, s...)
}

// DecodeTxResults parses EncodeTxResults' output, refusing an answer of
// more than max results. It never panics and never allocates more than
// the body could hold; any malformed input gives an error wrapping
// chain.ErrDecode that says where. A pending result gets Status
// TxPending, as in the JSON answer.
func DecodeTxResults(data []byte, max int) ([]SubmitResult, error) {
	data, err := versioned(data, txResultsVersion, "answer")
	if err != nil {
		return nil, err
	}
	count, n := chain.Uvarint(data)
	if n <= 0 {
		return nil, fmt.Errorf("%w: bad result count", chain.ErrDecode)
	}
	data = data[n:]
	if count > uint64(max) {
		return nil, fmt.Errorf("%w: %d results, the limit is %d", chain.ErrDecode, count, max)
	}
	if count > uint64(len(data)/minEncodedResult) {
		return nil, fmt.Errorf("%w: %d results cannot fit in %d bytes", chain.ErrDecode, count, len(data))
	}
	out := make([]SubmitResult, count)
	// The ids of the answer in one array: one allocation, not one each.
	ids := make([]chain.Hash, 0, min(count, uint64(len(data)/len(chain.Hash{}))))
	for i := range out {
		if len(data) == 0 {
			return nil, fmt.Errorf("%w: result %d: truncated", chain.ErrDecode, i)
		}
		kind := data[0]
		data = data[1:]
		if kind > resultRefusedNo {
			return nil, fmt.Errorf("%w: result %d: kind %d", chain.ErrDecode, i, kind)
		}
		if kind != resultRefusedNo {
			var id chain.Hash
			if len(data) < len(id) {
				return nil, fmt.Errorf("%w: result %d: truncated id", chain.ErrDecode, i)
			}
			copy(id[:], data)
			data = data[len(id):]
			ids = append(ids, id)
			out[i].ID = &ids[len(ids)-1]
		}
		if kind == resultPending {
			out[i].Status = TxPending
			continue
		}
		var e Error
		if e.Code, data, err = readText(data, maxResultCode); err != nil {
			return nil, fmt.Errorf("%w: result %d: code: %w", chain.ErrDecode, i, err)
		}
		if e.Message, data, err = readText(data, maxResultMessage); err != nil {
			return nil, fmt.Errorf("%w: result %d: message: %w", chain.ErrDecode, i, err)
		}
		out[i].Error = &e
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", chain.ErrDecode, len(data))
	}
	return out, nil
}

// versioned returns data after its version byte, which must be want;
// what names the data in errors.
func versioned(data []byte, want byte, what string) ([]byte, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty %s", chain.ErrDecode, what)
	}
	if data[0] != want {
		return nil, fmt.Errorf("%w: %s version %d, want %d", chain.ErrDecode, what, data[0], want)
	}
	return data[1:], nil
}

// readText reads a uvarint length + bytes of at most max bytes.
func readText(data []byte, max int) (string, []byte, error) {
	l, n := chain.Uvarint(data)
	switch {
	case n <= 0:
		return "", nil, fmt.Errorf("bad length")
	case l > uint64(max):
		return "", nil, fmt.Errorf("%d bytes, at most %d", l, max)
	case l > uint64(len(data)-n):
		return "", nil, fmt.Errorf("truncated")
	}
	return string(data[n : n+int(l)]), data[n+int(l):], nil
}

// The binary page of GET /v1/blocks/txids (Accept:
// application/octet-stream; docs/API.md): a version byte (1), then the
// blocks until the end of the body, each as AppendBinary writes it. A
// watcher reading every block's ids (poscli load) spent a twelfth of its
// CPU decoding their JSON hex.
const BlockTxIDsPageVersion = 1

// minEncodedBlockTxIDs is the smallest block in a binary page (height,
// hash, parent, an empty id list).
const minEncodedBlockTxIDs = 1 + 32 + 32 + 1

// AppendBinary appends b in the binary page encoding: height (uvarint),
// hash and prev_hash (32 bytes each), the id count (uvarint), the ids (32
// bytes each).
func (b BlockTxIDs) AppendBinary(out []byte) ([]byte, error) {
	out = binary.AppendUvarint(out, b.Height)
	out = append(out, b.Hash[:]...)
	out = append(out, b.PrevHash[:]...)
	out = binary.AppendUvarint(out, uint64(len(b.TxIDs)))
	for i := range b.TxIDs {
		out = append(out, b.TxIDs[i][:]...)
	}
	return out, nil
}

// DecodeBlockTxIDsPage parses a binary page of at most max blocks. It
// never panics and never allocates more than the body could hold; any
// malformed input gives an error wrapping chain.ErrDecode that says where.
func DecodeBlockTxIDsPage(data []byte, max int) ([]BlockTxIDs, error) {
	data, err := versioned(data, BlockTxIDsPageVersion, "page")
	if err != nil {
		return nil, err
	}
	var out []BlockTxIDs
	for len(data) > 0 {
		i := len(out)
		if i == max {
			return nil, fmt.Errorf("%w: more than %d blocks", chain.ErrDecode, max)
		}
		if len(data) < minEncodedBlockTxIDs {
			return nil, fmt.Errorf("%w: block %d: truncated", chain.ErrDecode, i)
		}
		var b BlockTxIDs
		var n int
		if b.Height, n = chain.Uvarint(data); n <= 0 {
			return nil, fmt.Errorf("%w: block %d: bad height", chain.ErrDecode, i)
		}
		data = data[n:]
		if len(data) < 2*len(b.Hash) {
			return nil, fmt.Errorf("%w: block %d: truncated", chain.ErrDecode, i)
		}
		copy(b.Hash[:], data)
		copy(b.PrevHash[:], data[len(b.Hash):])
		data = data[2*len(b.Hash):]
		count, n := chain.Uvarint(data)
		if n <= 0 {
			return nil, fmt.Errorf("%w: block %d: bad id count", chain.ErrDecode, i)
		}
		data = data[n:]
		if count > uint64(len(data)/len(chain.Hash{})) {
			return nil, fmt.Errorf("%w: block %d: %d ids cannot fit in %d bytes", chain.ErrDecode, i, count, len(data))
		}
		b.TxIDs = make([]chain.Hash, count)
		for j := range b.TxIDs {
			copy(b.TxIDs[j][:], data)
			data = data[len(chain.Hash{}):]
		}
		out = append(out, b)
	}
	return out, nil
}
