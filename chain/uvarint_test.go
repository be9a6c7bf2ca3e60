package chain

import (
	"errors"
	"testing"
)

// TestUvarintCanonical: a length in its shortest form decodes; the same
// value padded with continuation bytes is refused, so an encoding is one
// of a kind.
func TestUvarintCanonical(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		v    uint64
		n    int
	}{
		{"zero", []byte{0x00}, 0, 1},
		{"one byte", []byte{0x7f}, 127, 1},
		{"two bytes", []byte{0x80, 0x01}, 128, 2},
		{"zero padded", []byte{0x80, 0x00}, 0, -1},
		{"127 padded", []byte{0xff, 0x80, 0x00}, 0, -1},
		{"truncated", []byte{0x80}, 0, 0},
	} {
		if v, n := Uvarint(tc.in); v != tc.v || n != tc.n {
			t.Errorf("%s: Uvarint(%x) = %d, %d; want %d, %d", tc.name, tc.in, v, n, tc.v, tc.n)
		}
	}
	// A block whose transaction count is padded is refused.
	g := testGenesis(t)
	enc := EncodeBlock(g.Block()) // no transactions: the count is the last byte, 0x00
	if enc[len(enc)-1] != 0 {
		t.Fatalf("genesis block encoding ends in %x, not a zero count", enc[len(enc)-1])
	}
	padded := append(enc[:len(enc)-1:len(enc)-1], 0x80, 0x00)
	if _, err := DecodeBlock(padded); !errors.Is(err, ErrDecode) {
		t.Fatalf("padded count: %v", err)
	}
	if _, err := DecodeBlock(enc); err != nil {
		t.Fatalf("the block itself: %v", err)
	}
}
