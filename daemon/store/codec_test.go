package store

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/poslab/posd/chain"
)

func sampleUndo() *chain.Undo {
	fin, _ := (&chain.Finality{Justified: chain.Checkpoint{Height: 40, Hash: chain.Hash{4}}}).MarshalBinary()
	return &chain.Undo{Height: 42, Entries: []chain.UndoEntry{
		{Address: addrOf(key(1)), Account: chain.Account{Balance: 1, Stake: 2, Nonce: 3}},
		{Address: addrOf(key(2))},
		{Address: "", Account: chain.Account{Balance: ^uint64(0)}},
		{Address: addrOf(key(3)), Account: chain.Account{Nonce: 1, Unbonding: 9, Release: 300}},
	}, Slashings: []chain.Slashing{
		{Kind: chain.EvidenceEquivocation, Forger: addrOf(key(1)), Height: 40, IncludedIn: 42, Burned: 7},
		{Kind: chain.EvidenceSurroundVote, Forger: addrOf(key(2)), Height: 41, IncludedIn: 42},
	}, Finality: fin}
}

func TestUndoRoundTrip(t *testing.T) {
	for _, u := range []*chain.Undo{sampleUndo(), {Height: 7}, {Height: 8, Slashings: sampleUndo().Slashings}, {Height: 9, Finality: []byte{1}}} {
		enc, err := encodeUndo(u)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeUndo(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, u) {
			t.Fatalf("round trip %+v, want %+v", got, u)
		}
		for n := range enc {
			if _, err := decodeUndo(enc[:n]); !errors.Is(err, errMalformed) {
				t.Fatalf("truncated to %d bytes: %v", n, err)
			}
		}
		if _, err := decodeUndo(append(enc, 0)); !errors.Is(err, errMalformed) {
			t.Fatalf("trailing byte: %v", err)
		}
	}
	long := &chain.Undo{Entries: []chain.UndoEntry{{Address: chain.Address(bytes.Repeat([]byte("a"), maxAddressLen+1))}}}
	if _, err := encodeUndo(long); err == nil {
		t.Fatal("encoded an address over the limit")
	}
}

func TestAccountAndTxLoc(t *testing.T) {
	a := chain.Account{Balance: 5, Stake: 6, Nonce: 7}
	if got, err := decodeAccount(encodeAccount(a)); err != nil || got != a {
		t.Fatalf("account round trip %+v, %v", got, err)
	}
	if h, i, err := decodeTxLoc(encodeTxLoc(9, 1234)); err != nil || h != 9 || i != 1234 {
		t.Fatalf("tx location round trip %d %d %v", h, i, err)
	}
	if _, err := decodeAccount(encodeAccount(chain.Account{Unbonding: 1})); !errors.Is(err, errMalformed) {
		t.Fatalf("unbonding without a release height: %v", err)
	}
	for _, bad := range [][]byte{nil, make([]byte, 23), make([]byte, 25), make([]byte, accountLen-1), make([]byte, accountLen+1)} {
		if _, err := decodeAccount(bad); !errors.Is(err, errMalformed) {
			t.Fatalf("account of %d bytes: %v", len(bad), err)
		}
		if _, _, err := decodeTxLoc(bad); !errors.Is(err, errMalformed) {
			t.Fatalf("tx location of %d bytes: %v", len(bad), err)
		}
	}
}

// FuzzDecodeUndo: the decoder never panics, and whatever it accepts
// re-encodes to something that decodes the same.
func FuzzDecodeUndo(f *testing.F) {
	enc, _ := encodeUndo(sampleUndo())
	f.Add(enc)
	empty, _ := encodeUndo(&chain.Undo{Height: 1})
	f.Add(empty)
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := decodeUndo(data)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		re, err := encodeUndo(u)
		if err != nil {
			t.Fatal(err)
		}
		u2, err := decodeUndo(re)
		if err != nil || !reflect.DeepEqual(u, u2) {
			t.Fatalf("re-encoding changed the record: %+v vs %+v (%v)", u, u2, err)
		}
	})
}

// FuzzDecodeAccount: the small fixed records never panic and round-trip.
func FuzzDecodeAccount(f *testing.F) {
	f.Add(encodeAccount(chain.Account{Balance: 1, Stake: 2, Nonce: 3}))
	f.Add(encodeTxLoc(5, 6))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if a, err := decodeAccount(data); err == nil {
			if !bytes.Equal(encodeAccount(a), data) {
				t.Fatal("account does not round-trip")
			}
		}
		if h, i, err := decodeTxLoc(data); err == nil {
			if !bytes.Equal(encodeTxLoc(h, i), data) {
				t.Fatal("tx location does not round-trip")
			}
		}
	})
}
