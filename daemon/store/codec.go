package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/poslab/posd/chain"
)

// The store's own records. Blocks use chain.EncodeBlock; genesis is kept as
// its JSON. The rest are small binary records, integers big endian:
//
//	account   balance 8, stake 8, nonce 8, unbonding 8, release height 8
//	          (exactly 40 bytes)
//	slashing  key: class 1 (1 equivocation, 2 vote), height 8, offender;
//	          value: kind 1 (1 equivocation, 2 double_vote,
//	          3 surround_vote), included_in 8, burned 8 (exactly 17 bytes)
//	undo      version 1 byte (2), height 8, entry count uvarint,
//	          per entry: address (uvarint length + bytes), account 40;
//	          slashing count uvarint, per slashing: offender (uvarint
//	          length + bytes), height 8, value 17; finality length
//	          uvarint (0: the block left it as it was) + bytes
//	finality  chain.Finality.MarshalBinary (meta key "finality")
//	tx index  height 8, index 4
//	height    8 (keys of the main and undo buckets, so they sort by height)

const (
	accountLen    = 40
	slashingLen   = 17
	txLocLen      = 12
	undoVersion   = 2
	maxAddressLen = 1024 // real addresses are 40 bytes; anything longer is garbage
	minUndoEntry  = 1 + accountLen
	minUndoSlash  = 1 + 8 + slashingLen
	// maxFinalityLen bounds a stored finality record before it is decoded.
	maxFinalityLen = 1 << 20
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
	out = binary.BigEndian.AppendUint64(out, a.Nonce)
	out = binary.BigEndian.AppendUint64(out, a.Unbonding)
	return binary.BigEndian.AppendUint64(out, a.Release)
}

func encodeAccount(a chain.Account) []byte { return appendAccount(make([]byte, 0, accountLen), a) }

func decodeAccount(v []byte) (chain.Account, error) {
	if len(v) != accountLen {
		return chain.Account{}, fmt.Errorf("%w: account of %d bytes, want %d", errMalformed, len(v), accountLen)
	}
	a := chain.Account{
		Balance:   binary.BigEndian.Uint64(v[0:]),
		Stake:     binary.BigEndian.Uint64(v[8:]),
		Nonce:     binary.BigEndian.Uint64(v[16:]),
		Unbonding: binary.BigEndian.Uint64(v[24:]),
		Release:   binary.BigEndian.Uint64(v[32:]),
	}
	if (a.Unbonding == 0) != (a.Release == 0) {
		return chain.Account{}, fmt.Errorf("%w: account unbonding %d with release height %d", errMalformed, a.Unbonding, a.Release)
	}
	return a, nil
}

// Slashing kinds and classes as the store writes them.
var (
	slashKinds = [...]chain.EvidenceKind{1: chain.EvidenceEquivocation, 2: chain.EvidenceDoubleVote, 3: chain.EvidenceSurroundVote}
)

func kindCode(k chain.EvidenceKind) byte {
	for c, kk := range slashKinds {
		if c > 0 && kk == k {
			return byte(c)
		}
	}
	return 1 // the zero kind is an equivocation
}

// slashClass is the offence class of a kind: both vote kinds are one.
func slashClass(k chain.EvidenceKind) byte {
	if k == chain.EvidenceDoubleVote || k == chain.EvidenceSurroundVote {
		return 2
	}
	return 1
}

// slashingKey is the slashings bucket's key of r: one per offence.
func slashingKey(r chain.Slashing) []byte {
	k := make([]byte, 0, 9+len(r.Forger))
	k = append(k, slashClass(r.Kind))
	k = binary.BigEndian.AppendUint64(k, r.Height)
	return append(k, r.Forger...)
}

func appendSlashingValue(out []byte, r chain.Slashing) []byte {
	out = append(out, kindCode(r.Kind))
	out = binary.BigEndian.AppendUint64(out, r.IncludedIn)
	return binary.BigEndian.AppendUint64(out, r.Burned)
}

// decodeSlashing reads a slashings bucket record.
func decodeSlashing(k, v []byte) (chain.Slashing, error) {
	if len(k) < 9 || len(k) > 9+maxAddressLen {
		return chain.Slashing{}, fmt.Errorf("%w: slashing key of %d bytes", errMalformed, len(k))
	}
	r, err := decodeSlashingValue(v)
	if err != nil {
		return r, err
	}
	r.Height = binary.BigEndian.Uint64(k[1:])
	r.Forger = chain.Address(k[9:])
	if slashClass(r.Kind) != k[0] {
		return chain.Slashing{}, fmt.Errorf("%w: slashing of kind %s under class %d", errMalformed, r.Kind, k[0])
	}
	return r, nil
}

func decodeSlashingValue(v []byte) (chain.Slashing, error) {
	if len(v) != slashingLen {
		return chain.Slashing{}, fmt.Errorf("%w: slashing of %d bytes, want %d", errMalformed, len(v), slashingLen)
	}
	if v[0] == 0 || int(v[0]) >= len(slashKinds) {
		return chain.Slashing{}, fmt.Errorf("%w: slashing kind %d", errMalformed, v[0])
	}
	return chain.Slashing{
		Kind:       slashKinds[v[0]],
		IncludedIn: binary.BigEndian.Uint64(v[1:]),
		Burned:     binary.BigEndian.Uint64(v[9:]),
	}, nil
}

func encodeUndo(u *chain.Undo) ([]byte, error) {
	n := 1 + 8 + 3*binary.MaxVarintLen64 + len(u.Finality)
	for _, e := range u.Entries {
		if len(e.Address) > maxAddressLen {
			return nil, fmt.Errorf("store: undo of height %d: address of %d bytes (limit %d)", u.Height, len(e.Address), maxAddressLen)
		}
		n += 2 + len(e.Address) + accountLen
	}
	for _, r := range u.Slashings {
		if len(r.Forger) > maxAddressLen {
			return nil, fmt.Errorf("store: undo of height %d: offender of %d bytes (limit %d)", u.Height, len(r.Forger), maxAddressLen)
		}
		n += 2 + len(r.Forger) + 8 + slashingLen
	}
	if len(u.Finality) > maxFinalityLen {
		return nil, fmt.Errorf("store: undo of height %d: finality record of %d bytes (limit %d)", u.Height, len(u.Finality), maxFinalityLen)
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
	out = binary.AppendUvarint(out, uint64(len(u.Slashings)))
	for _, r := range u.Slashings {
		out = binary.AppendUvarint(out, uint64(len(r.Forger)))
		out = append(out, r.Forger...)
		out = binary.BigEndian.AppendUint64(out, r.Height)
		out = appendSlashingValue(out, r)
	}
	out = binary.AppendUvarint(out, uint64(len(u.Finality)))
	return append(out, u.Finality...), nil
}

// decodeUndo parses encodeUndo's output. It never panics and refuses
// anything that is not exactly one record; every count and length is
// checked against the bytes left before anything is allocated.
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
	count, n = binary.Uvarint(v)
	if n <= 0 {
		return bad("bad slashing count")
	}
	v = v[n:]
	if count > uint64(len(v)/minUndoSlash) {
		return bad("%d slashings cannot fit in %d bytes", count, len(v))
	}
	if count > 0 {
		u.Slashings = make([]chain.Slashing, count)
	}
	for i := range u.Slashings {
		l, n := binary.Uvarint(v)
		if n <= 0 {
			return bad("slashing %d: bad offender length", i)
		}
		v = v[n:]
		if l > maxAddressLen || l+8+slashingLen > uint64(len(v)) {
			return bad("slashing %d: offender of %d bytes in %d remaining", i, l, len(v))
		}
		r, err := decodeSlashingValue(v[l+8 : l+8+slashingLen])
		if err != nil {
			return nil, err
		}
		r.Forger = chain.Address(v[:l])
		r.Height = binary.BigEndian.Uint64(v[l:])
		u.Slashings[i] = r
		v = v[l+8+slashingLen:]
	}
	l, n := binary.Uvarint(v)
	if n <= 0 {
		return bad("bad finality length")
	}
	v = v[n:]
	if l > maxFinalityLen || l > uint64(len(v)) {
		return bad("finality record of %d bytes in %d remaining", l, len(v))
	}
	if l > 0 {
		u.Finality = bytes.Clone(v[:l])
	}
	v = v[l:]
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
