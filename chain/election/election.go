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
	t := &StakeTable{stakers: make([]string, 0, len(stakes))}
	for s, v := range stakes {
		if v > 0 {
			t.stakers = append(t.stakers, s)
		}
	}
	slices.Sort(t.stakers) // Go string order is byte order.
	t.stakes = make([]uint64, len(t.stakers))
	t.cum = make([]uint64, len(t.stakers))
	var sum uint64
	for i, s := range t.stakers {
		v := stakes[s]
		t.stakes[i] = v
		sum = satAdd(sum, v)
		t.cum[i] = sum
	}
	return t
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
