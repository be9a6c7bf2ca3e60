package election

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
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
// Cost: one SHA-256 per unit of stake, i.e. Total() hashes per election,
// spread over the cores staker by staker (a staker's lots are one hash
// chain); picking the n best is O(stakers · n) in the worst case, and
// O(stakers) in practice.
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
	refDigest, _ := lotDigest(make([]byte, 0, 2*len(seed)+2), seed)
	ref := u256FromDigest(&refDigest)
	n = min(n, t.Len())

	// Each staker's best offset is independent of the others', so the
	// stakers are spread over the cores, each range keeping its own n best;
	// the ranges' bests are then merged. The result does not depend on how
	// the stakers were spread.
	seedPlain := isPlain(seed)
	var mu sync.Mutex
	var all []ranked
	eachStaker(t, func(lo, hi int, buf []byte) []byte {
		best := make([]ranked, 0, n)
		for i := lo; i < hi; i++ {
			// H(s + seed) quotes the concatenation: quoting s and seed
			// separately would differ when invalid UTF-8 bytes at the join
			// form a valid sequence together.
			if s := t.stakers[i]; seedPlain && isPlain(s) {
				// What appendPyQuote writes for such strings, without
				// its byte-by-byte work (most of an election's cost
				// beside the hashes when it has many stakers).
				buf = append(append(append(append(buf[:0], '"'), s...), seed...), '"')
			} else {
				buf = appendPyQuoteConcat(buf[:0], s, seed)
			}
			first := sha256.Sum256(buf)
			best = keepBest(best, n, ranked{bestOffset(first, t.stakes[i], ref), i})
		}
		mu.Lock()
		all = append(all, best...)
		mu.Unlock()
		return buf
	})
	// The n best overall, by offset, equal offsets in table (first met)
	// order: what a stable sort of every staker would put first.
	slices.SortFunc(all, func(a, b ranked) int {
		switch {
		case a.off.less(b.off):
			return -1
		case b.off.less(a.off):
			return 1
		}
		return a.idx - b.idx
	})
	out := make([]string, n)
	for i := range out {
		out[i] = t.stakers[all[i].idx]
	}
	return out
}

// ranked is a staker's best offset and its index in the table.
type ranked struct {
	off u256
	idx int
}

// keepBest inserts r into best, the n smallest offsets met so far in
// increasing index order, ties kept in the order met.
func keepBest(best []ranked, n int, r ranked) []ranked {
	if len(best) == n && !r.off.less(best[n-1].off) {
		return best
	}
	j := sort.Search(len(best), func(j int) bool { return r.off.less(best[j].off) })
	if len(best) < n {
		best = append(best, ranked{})
	}
	copy(best[j+1:], best[j:len(best)-1])
	best[j] = r
	return best
}

// parallelLots is the number of lots below which one core does the work:
// spreading it would cost more than it saves.
const parallelLots = 4096

// eachStaker runs f over consecutive ranges of stakers covering the table,
// on all cores when the table holds enough lots. f gets a scratch buffer
// of its own and returns it (possibly grown).
func eachStaker(t *StakeTable, f func(lo, hi int, buf []byte) []byte) {
	workers := runtime.GOMAXPROCS(0)
	if workers <= 1 || t.Total() < parallelLots || len(t.stakers) == 1 {
		f(0, len(t.stakers), nil)
		return
	}
	// Ranges of about total/(8·workers) lots, handed out in order; a
	// staker holding more is a range of its own (its lots are one hash
	// chain, which only one core can walk).
	target := max(t.Total()/uint64(8*workers), 1)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var buf []byte
			for {
				lo := int(next.Load())
				if lo >= len(t.stakers) {
					return
				}
				hi := lo + 1
				var lots uint64
				for lots = t.stakes[lo]; hi < len(t.stakers) && lots < target; hi++ {
					lots += t.stakes[hi]
				}
				if !next.CompareAndSwap(int64(lo), int64(hi)) {
					continue
				}
				buf = f(lo, hi, buf)
			}
		})
	}
	wg.Wait()
}
