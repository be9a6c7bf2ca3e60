// Package election runs forger elections: given the stakes of all stakers and
// a seed (normally the previous block's hash), it ranks the candidates that
// may forge the next block, using one of several registered election rules.
//
// Two rules are registered by this package:
//
//   - "lottery" reproduces, bit for bit, the hash-chain lottery of the Python
//     project posd descends from. It costs one SHA-256 per unit of stake.
//   - "weighted" is a stake-weighted draw that costs O(log n) per candidate on
//     a prepared StakeTable.
package election

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
)

// StakeTable is an immutable, prepared view of stakes: entries sorted by
// staker string (byte order), zero stakes dropped, prefix sums precomputed so
// weighted draws are O(log n).
//
// A nil *StakeTable behaves as an empty table. A StakeTable is safe for
// concurrent use.
//
// Overflow: the prefix sums saturate at math.MaxUint64. Real stake totals fit
// in a uint64 by a wide margin, but if the sum of all stakes would overflow,
// Total reports math.MaxUint64, Stake still reports each staker's own stake,
// and stake-proportional rules (weighted) treat a staker's interval on the
// number line as clamped at math.MaxUint64 (stakers entirely past the
// saturation point get no weight and are ranked last, in table order).
type StakeTable struct {
	stakers []string // sorted by byte order, distinct
	stakes  []uint64 // stakes[i] > 0 belongs to stakers[i]
	cum     []uint64 // cum[i] = stakes[0]+...+stakes[i], saturating
}

// NewStakeTable prepares stakes for elections. Stakers with zero stake are
// dropped. The map is not retained.
func NewStakeTable(stakes map[string]uint64) *StakeTable {
	list := make([]Stake, 0, len(stakes))
	for s, v := range stakes {
		list = append(list, Stake{s, v})
	}
	t, _ := NewStakeTableFromList(list) // map keys are distinct
	return t
}

// Stake is one staker's stake, for NewStakeTableFromList.
type Stake struct {
	Staker string
	Stake  uint64
}

// ErrDuplicateStaker is returned by NewStakeTableFromList when a staker
// appears twice.
var ErrDuplicateStaker = errors.New("election: staker listed twice")

// NewStakeTableFromList is NewStakeTable on a list of distinct stakers in
// any order, without the map: a node builds its table from its state this
// way. Zero stakes are dropped; the list is not retained.
func NewStakeTableFromList(list []Stake) (*StakeTable, error) {
	// Sorting max_lots staker strings is most of what a table costs, so
	// entries are radix-sorted by their first 8 bytes as an integer
	// (zero-padded, which keeps byte order), and only runs of equal
	// prefixes compare strings.
	keys := make([]sortKey, 0, len(list))
	for i, e := range list {
		if e.Stake > 0 {
			var k [8]byte
			copy(k[:], e.Staker)
			keys = append(keys, sortKey{binary.BigEndian.Uint64(k[:]), uint32(i)})
		}
	}
	radixSort(keys)
	for lo := 0; lo < len(keys); {
		hi := lo + 1
		for hi < len(keys) && keys[hi].key == keys[lo].key {
			hi++
		}
		if hi-lo > 1 {
			run := keys[lo:hi]
			slices.SortFunc(run, func(a, b sortKey) int { return strings.Compare(list[a.idx].Staker, list[b.idx].Staker) })
			for i := 1; i < len(run); i++ {
				if list[run[i].idx].Staker == list[run[i-1].idx].Staker {
					return nil, fmt.Errorf("%w: %q", ErrDuplicateStaker, list[run[i].idx].Staker)
				}
			}
		}
		lo = hi
	}
	t := &StakeTable{
		stakers: make([]string, len(keys)),
		stakes:  make([]uint64, len(keys)),
		cum:     make([]uint64, len(keys)),
	}
	var sum uint64
	for i, k := range keys {
		e := list[k.idx]
		t.stakers[i], t.stakes[i] = e.Staker, e.Stake
		sum = satAdd(sum, e.Stake)
		t.cum[i] = sum
	}
	return t, nil
}

type sortKey struct {
	key uint64
	idx uint32
}

// radixSort sorts keys by key, stably, in four passes of 16 bits.
func radixSort(keys []sortKey) {
	if len(keys) < 256 {
		slices.SortStableFunc(keys, func(a, b sortKey) int { return cmp.Compare(a.key, b.key) })
		return
	}
	tmp := make([]sortKey, len(keys))
	var count [1 << 16]int
	src, dst := keys, tmp
	for shift := uint(0); shift < 64; shift += 16 {
		clear(count[:])
		for _, k := range src {
			count[(k.key>>shift)&0xffff]++
		}
		pos := 0
		for i, c := range count {
			count[i] = pos
			pos += c
		}
		for _, k := range src {
			d := (k.key >> shift) & 0xffff
			dst[count[d]] = k
			count[d]++
		}
		src, dst = dst, src
	}
	// Four passes: the result is back in keys.
}

func satAdd(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

// Len returns the number of stakers with a non-zero stake.
func (t *StakeTable) Len() int {
	if t == nil {
		return 0
	}
	return len(t.stakers)
}

// Total returns the sum of all stakes, saturated at math.MaxUint64 (see the
// StakeTable documentation); it never fails.
func (t *StakeTable) Total() uint64 {
	if t == nil || len(t.cum) == 0 {
		return 0
	}
	return t.cum[len(t.cum)-1]
}

// Stakers returns the stakers in table order (sorted by byte order). The
// returned slice is a copy.
func (t *StakeTable) Stakers() []string {
	if t == nil {
		return nil
	}
	return slices.Clone(t.stakers)
}

// Stake returns staker's stake, or 0 if it has none.
func (t *StakeTable) Stake(staker string) uint64 {
	if t == nil {
		return 0
	}
	if i, ok := slices.BinarySearch(t.stakers, staker); ok {
		return t.stakes[i]
	}
	return 0
}

// Algorithm is one election rule.
type Algorithm interface {
	Name() string
	// Rank returns the first n distinct candidates for this seed, best first
	// (fewer if fewer stakers). Empty table -> nil. n <= 0 -> nil.
	Rank(seed string, t *StakeTable, n int) []string
}

// ErrUnknownAlgorithm is wrapped by the error Get returns for an unknown name.
var ErrUnknownAlgorithm = errors.New("election: unknown algorithm")

var registry = struct {
	sync.RWMutex
	m map[string]Algorithm
}{m: make(map[string]Algorithm)}

// Register makes a available under a.Name(). It is meant to be called from
// init functions and panics if a is nil, its name is empty, or the name is
// already registered (programming errors).
func Register(a Algorithm) {
	if a == nil {
		panic("election: Register of nil Algorithm")
	}
	name := a.Name()
	if name == "" {
		panic("election: Register of Algorithm with empty name")
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[name]; dup {
		panic("election: Register called twice for algorithm " + name)
	}
	registry.m[name] = a
}

// Get returns the algorithm registered under name. For an unknown name the
// error wraps ErrUnknownAlgorithm and lists the known names.
func Get(name string) (Algorithm, error) {
	registry.RLock()
	a, ok := registry.m[name]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownAlgorithm, name, strings.Join(Names(), ", "))
	}
	return a, nil
}

// Names returns the registered algorithm names, sorted.
func Names() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.m))
	for n := range registry.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// With returns a new table: t with the given stakes changed (a zero stake
// removes its staker; when a staker appears more than once, its last entry
// counts). It costs O(Len() + k log k) for k changes, against
// O(Len() log Len()) for a new table, so a node whose blocks change a few
// stakes keeps its table up to date cheaply. t is unchanged.
func (t *StakeTable) With(changes []Stake) *StakeTable {
	if len(changes) == 0 {
		return t
	}
	ch := slices.Clone(changes)
	slices.SortStableFunc(ch, func(a, b Stake) int { return strings.Compare(a.Staker, b.Staker) })
	// Keep the last entry of each staker.
	w := 0
	for i := range ch {
		if i+1 < len(ch) && ch[i+1].Staker == ch[i].Staker {
			continue
		}
		ch[w] = ch[i]
		w++
	}
	ch = ch[:w]
	n := t.Len()
	out := &StakeTable{
		stakers: make([]string, 0, n+len(ch)),
		stakes:  make([]uint64, 0, n+len(ch)),
	}
	// Copy the runs of t between changes whole: a block changes a few
	// stakes among up to max_lots stakers.
	i := 0
	for _, c := range ch {
		k, found := slices.BinarySearch(t.stakers[i:], c.Staker)
		k += i
		out.stakers = append(out.stakers, t.stakers[i:k]...)
		out.stakes = append(out.stakes, t.stakes[i:k]...)
		if c.Stake > 0 {
			out.stakers = append(out.stakers, c.Staker)
			out.stakes = append(out.stakes, c.Stake)
		}
		i = k
		if found {
			i++
		}
	}
	out.stakers = append(out.stakers, t.stakers[i:]...)
	out.stakes = append(out.stakes, t.stakes[i:]...)
	out.cum = make([]uint64, len(out.stakes))
	var sum uint64
	for k, v := range out.stakes {
		sum = satAdd(sum, v)
		out.cum[k] = sum
	}
	return out
}
