package election

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"slices"
)

func init() { Register(lottery{}) }

// lottery is the election of the original Python project, reproduced
// exactly.
//
// H(x) is the lowercase hex SHA-256 of json.dumps(x) (see appendPyQuote).
// A staker s with stake n holds lots 1..n: lot_1 = H(s + seed) and
// lot_{i+1} = H(lot_i). The reference is r = H(seed) read as a 256-bit
// unsigned integer, and a lot's offset is |lot - r|. The winner holds the lot
// with the smallest offset; on an exact tie the lot met first wins, stakers
// being met in StakeTable order and each staker's lots in order 1..n.
// Candidates are ranked by their best lot's offset, ties broken the same way
// (first met first), so Rank(...)[0] is the original's winner.
//
// Cost: one SHA-256 per unit of stake, i.e. Total() hashes per election.
type lottery struct{}

func (lottery) Name() string { return "lottery" }

// u256 is a 256-bit unsigned integer, most significant word first, so that
// comparing two values is comparing the words in order.
type u256 [4]uint64

func u256FromDigest(d *[sha256.Size]byte) u256 {
	return u256{
		binary.BigEndian.Uint64(d[0:]),
		binary.BigEndian.Uint64(d[8:]),
		binary.BigEndian.Uint64(d[16:]),
		binary.BigEndian.Uint64(d[24:]),
	}
}

func (a u256) less(b u256) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// absDiff returns |a - b|.
func absDiff(a, b u256) u256 {
	if a.less(b) {
		a, b = b, a
	}
	var d u256
	var borrow uint64
	d[3], borrow = bits.Sub64(a[3], b[3], 0)
	d[2], borrow = bits.Sub64(a[2], b[2], borrow)
	d[1], borrow = bits.Sub64(a[1], b[1], borrow)
	d[0], _ = bits.Sub64(a[0], b[0], borrow)
	return d
}

// lotDigest returns SHA-256(json.dumps(s)), the raw digest of which H(s) is
// the hex.
func lotDigest(buf []byte, s string) ([sha256.Size]byte, []byte) {
	buf = appendPyQuote(buf[:0], s)
	return sha256.Sum256(buf), buf
}

// bestOffset returns the smallest offset from ref over the n lots whose
// first lot has the raw digest first. The first lot with that offset is the
// one that counts, which only matters for ties across stakers.
func bestOffset(first [sha256.Size]byte, n uint64, ref u256) u256 {
	// q holds a JSON-quoted 64-digit hex string; the hex of each lot is
	// written straight into it, so the loop does not allocate.
	var q [2 + 2*sha256.Size]byte
	q[0], q[len(q)-1] = '"', '"'
	d := first
	best := absDiff(u256FromDigest(&d), ref)
	for i := uint64(1); i < n; i++ {
		hex.Encode(q[1:len(q)-1], d[:])
		d = sha256.Sum256(q[:])
		if off := absDiff(u256FromDigest(&d), ref); off.less(best) {
			best = off
		}
	}
	return best
}

func (lottery) Rank(seed string, t *StakeTable, n int) []string {
	if t.Len() == 0 || n <= 0 {
		return nil
	}
	buf := make([]byte, 0, 2*(len(seed)+64)+2)
	refDigest, buf := lotDigest(buf, seed)
	ref := u256FromDigest(&refDigest)

	offs := make([]u256, len(t.stakers))
	for i, s := range t.stakers {
		// H(s + seed) quotes the concatenation: quoting s and seed
		// separately would differ when invalid UTF-8 bytes at the join
		// form a valid sequence together.
		var first [sha256.Size]byte
		first, buf = lotDigest(buf, s+seed)
		offs[i] = bestOffset(first, t.stakes[i], ref)
	}

	idx := make([]int, len(offs))
	for i := range idx {
		idx[i] = i
	}
	// Stable: equal offsets keep table (first met) order.
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case offs[a].less(offs[b]):
			return -1
		case offs[b].less(offs[a]):
			return 1
		}
		return 0
	})
	n = min(n, len(idx))
	out := make([]string, n)
	for i := range out {
		out[i] = t.stakers[idx[i]]
	}
	return out
}
