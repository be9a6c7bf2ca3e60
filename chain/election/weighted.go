package election

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

func init() { Register(weighted{}) }

// weighted is a stake-weighted draw without replacement.
//
// Draw j = 0, 1, 2, ... hashes seed ‖ uint64-big-endian(j) with SHA-256 and
// takes the first 8 bytes of the digest as a big-endian uint64 x. x is mapped
// to [0, Total) with Lemire's multiply-shift method including its rejection
// step, so the result is exactly uniform (no modulo bias): hi, lo :=
// x*Total as a 128-bit product; if lo < (2^64 - Total) mod Total the draw is
// rejected (probability below Total/2^64) and the next j is used; otherwise
// hi is the value. The staker whose cumulative stake interval contains the
// value is found by binary search over the prefix sums. Stakers already
// picked are skipped (the draw is wasted).
//
// Termination: once 64*n draws (n = min(requested, Len())) have been used
// and fewer than n candidates are picked, the remaining candidates are drawn
// from the stakers not yet picked only: a Fenwick tree over the stakes with
// the picked stakers' weight removed, sampled with the same uniform method,
// continuing the same j sequence. Either way each next candidate is chosen
// with probability proportional to stake among the stakers not yet picked;
// the fallback only changes which draws map to which staker. Should the
// remaining weight be zero (possible only with a saturated Total, see
// StakeTable), the remaining stakers follow in table order.
//
// Cost: O(n log Len()) on a prepared table in the common case; the fallback
// adds O(Len()).
type weighted struct{}

func (weighted) Name() string { return "weighted" }

// smallPicked is the candidate count up to which picked stakers are tracked
// by scanning a short list instead of a bitset.
const smallPicked = 32

// drawer produces the draw sequence for one seed.
type drawer struct {
	buf []byte // seed ‖ uint64-big-endian(j)
	j   uint64 // index of the next draw
}

// uniform performs draw j and maps it to [0, bound), bound > 0. ok is false
// if the draw was rejected.
func (d *drawer) uniform(bound uint64) (v uint64, ok bool) {
	binary.BigEndian.PutUint64(d.buf[len(d.buf)-8:], d.j)
	d.j++
	h := sha256.Sum256(d.buf)
	hi, lo := bits.Mul64(binary.BigEndian.Uint64(h[:8]), bound)
	if lo < bound && lo < -bound%bound {
		return 0, false
	}
	return hi, true
}

// searchCum returns the smallest i with cum[i] > x.
func searchCum(cum []uint64, x uint64) int {
	lo, hi := 0, len(cum)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cum[m] <= x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (weighted) Rank(seed string, t *StakeTable, n int) []string {
	size := t.Len()
	if size == 0 || n <= 0 {
		return nil
	}
	n = min(n, size)

	var stack [128]byte
	d := drawer{buf: stack[:0]}
	if len(seed)+8 > len(stack) {
		d.buf = make([]byte, 0, len(seed)+8)
	}
	d.buf = append(d.buf, seed...)
	d.buf = d.buf[:len(seed)+8]

	var pickedStack [smallPicked]int
	picked := pickedStack[:0] // table indices, in pick order
	var seen []uint64         // bitset, only when n > smallPicked
	if n > smallPicked {
		picked = make([]int, 0, n)
		seen = make([]uint64, (size+63)/64)
	}
	has := func(i int) bool {
		if seen != nil {
			return seen[i/64]&(1<<(i%64)) != 0
		}
		for _, p := range picked {
			if p == i {
				return true
			}
		}
		return false
	}

	total := t.Total()
	budget := 64 * uint64(n)
	for len(picked) < n && d.j < budget {
		x, ok := d.uniform(total)
		if !ok {
			continue
		}
		i := searchCum(t.cum, x)
		if has(i) {
			continue
		}
		picked = append(picked, i)
		if seen != nil {
			seen[i/64] |= 1 << (i % 64)
		}
	}
	if len(picked) < n {
		picked = t.fallback(&d, picked, n)
	}

	out := make([]string, n)
	for k, i := range picked {
		out[k] = t.stakers[i]
	}
	return out
}

// width returns staker i's interval width on the (saturating) number line.
func (t *StakeTable) width(i int) uint64 {
	if i == 0 {
		return t.cum[0]
	}
	return t.cum[i] - t.cum[i-1]
}

// fallback completes picked to n candidates drawing only among the stakers
// not yet picked (see weighted).
func (t *StakeTable) fallback(d *drawer, picked []int, n int) []int {
	size := len(t.cum)
	// tree is a Fenwick tree (1-based) over the interval widths.
	tree := make([]uint64, size+1)
	for k := 1; k <= size; k++ {
		lo := k - k&-k // tree[k] covers elements lo..k-1 (0-based)
		tree[k] = t.cum[k-1]
		if lo > 0 {
			tree[k] -= t.cum[lo-1]
		}
	}
	taken := make([]bool, size)
	remaining := t.Total()
	remove := func(i int) {
		taken[i] = true
		w := t.width(i)
		remaining -= w
		for k := i + 1; k <= size; k += k & -k {
			tree[k] -= w
		}
	}
	for _, i := range picked {
		remove(i)
	}
	top := 1 << (bits.Len(uint(size)) - 1)
	for len(picked) < n && remaining > 0 {
		x, ok := d.uniform(remaining)
		if !ok {
			continue
		}
		// Smallest i whose prefix sum of remaining widths exceeds x.
		pos := 0
		for step := top; step > 0; step >>= 1 {
			if next := pos + step; next <= size && tree[next] <= x {
				pos = next
				x -= tree[next]
			}
		}
		picked = append(picked, pos)
		remove(pos)
	}
	for i := 0; len(picked) < n && i < size; i++ {
		if !taken[i] {
			picked = append(picked, i)
			taken[i] = true
		}
	}
	return picked
}
