package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/poslab/posd/chain"
)

// The store's own records. Blocks use chain.EncodeBlock; genesis is kept as
// its JSON. The rest are small binary records, integers big endian:
//
//	account   balance 8, stake 8, nonce 8 (exactly 24 bytes)
//	undo      version 1 byte (1), height 8, entry count uvarint,
//	          per entry: address (uvarint length + bytes), account 24
//	tx index  height 8, index 4
//	height    8 (keys of the main and undo buckets, so they sort by height)

const (
	accountLen    = 24
	txLocLen      = 12
	undoVersion   = 1
	maxAddressLen = 1024 // real addresses are 40 bytes; anything longer is garbage
	minUndoEntry  = 1 + accountLen
)

// errMalformed is wrapped by every decoding failure of this file; the store
// turns it into ErrCorrupt with the bucket and key.
var errMalformed = errors.New("malformed record")

func heightKey(h uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), h) }

func decodeHeightKey(k []byte) (uint64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("%w: height key of %d bytes", errMalformed, len(k))
	}
	return binary.BigEndian.Uint64(k), nil
}

func appendAccount(out []byte, a chain.Account) []byte {
	out = binary.BigEndian.AppendUint64(out, a.Balance)
	out = binary.BigEndian.AppendUint64(out, a.Stake)
	return binary.BigEndian.AppendUint64(out, a.Nonce)
}

func encodeAccount(a chain.Account) []byte { return appendAccount(make([]byte, 0, accountLen), a) }

func decodeAccount(v []byte) (chain.Account, error) {
	if len(v) != accountLen {
		return chain.Account{}, fmt.Errorf("%w: account of %d bytes, want %d", errMalformed, len(v), accountLen)
	}
	return chain.Account{
		Balance: binary.BigEndian.Uint64(v[0:]),
		Stake:   binary.BigEndian.Uint64(v[8:]),
		Nonce:   binary.BigEndian.Uint64(v[16:]),
	}, nil
}

func encodeUndo(u *chain.Undo) ([]byte, error) {
	n := 1 + 8 + binary.MaxVarintLen64
	for _, e := range u.Entries {
		if len(e.Address) > maxAddressLen {
			return nil, fmt.Errorf("store: undo of height %d: address of %d bytes (limit %d)", u.Height, len(e.Address), maxAddressLen)
		}
		n += 2 + len(e.Address) + accountLen
	}
	out := make([]byte, 0, n)
	out = append(out, undoVersion)
	out = binary.BigEndian.AppendUint64(out, u.Height)
	out = binary.AppendUvarint(out, uint64(len(u.Entries)))
	for _, e := range u.Entries {
		out = binary.AppendUvarint(out, uint64(len(e.Address)))
		out = append(out, e.Address...)
		out = appendAccount(out, e.Account)
	}
	return out, nil
}

// decodeUndo parses encodeUndo's output. It never panics and refuses
// anything that is not exactly one record.
func decodeUndo(v []byte) (*chain.Undo, error) {
	bad := func(format string, args ...any) (*chain.Undo, error) {
		return nil, fmt.Errorf("%w: undo: "+format, append([]any{errMalformed}, args...)...)
	}
	if len(v) < 1+8 {
		return bad("%d bytes is too short", len(v))
	}
	if v[0] != undoVersion {
		return bad("version %d", v[0])
	}
	u := &chain.Undo{Height: binary.BigEndian.Uint64(v[1:])}
	v = v[9:]
	count, n := binary.Uvarint(v)
	if n <= 0 {
		return bad("bad entry count")
	}
	v = v[n:]
	if count > uint64(len(v)/minUndoEntry) {
		return bad("%d entries cannot fit in %d bytes", count, len(v))
	}
	if count > 0 {
		u.Entries = make([]chain.UndoEntry, count)
	}
	for i := range u.Entries {
		l, n := binary.Uvarint(v)
		if n <= 0 {
			return bad("entry %d: bad address length", i)
		}
		v = v[n:]
		if l > maxAddressLen || l+accountLen > uint64(len(v)) {
			return bad("entry %d: address of %d bytes in %d remaining", i, l, len(v))
		}
		u.Entries[i].Address = chain.Address(v[:l])
		acc, err := decodeAccount(v[l : l+accountLen])
		if err != nil {
			return nil, err
		}
		u.Entries[i].Account = acc
		v = v[l+accountLen:]
	}
	if len(v) != 0 {
		return bad("%d trailing bytes", len(v))
	}
	return u, nil
}

func encodeTxLoc(height uint64, index int) []byte {
	return appendTxLoc(make([]byte, 0, txLocLen), height, index)
}

// appendTxLoc appends the encoding of encodeTxLoc to out.
func appendTxLoc(out []byte, height uint64, index int) []byte {
	out = binary.BigEndian.AppendUint64(out, height)
	return binary.BigEndian.AppendUint32(out, uint32(index))
}

func decodeTxLoc(v []byte) (uint64, int, error) {
	if len(v) != txLocLen {
		return 0, 0, fmt.Errorf("%w: tx location of %d bytes, want %d", errMalformed, len(v), txLocLen)
	}
	return binary.BigEndian.Uint64(v), int(binary.BigEndian.Uint32(v[8:])), nil
}
