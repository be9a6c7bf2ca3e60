package election

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestNewStakeTable(t *testing.T) {
	tests := []struct {
		name    string
		stakes  map[string]uint64
		stakers []string
		total   uint64
	}{
		{"nil map", nil, []string{}, 0},
		{"empty", map[string]uint64{}, []string{}, 0},
		{"all zero", map[string]uint64{"a": 0, "b": 0}, []string{}, 0},
		{"zero dropped", map[string]uint64{"b": 2, "a": 0, "c": 5}, []string{"b", "c"}, 7},
		{"byte order", map[string]uint64{"zoë": 1, "zoe": 1, "Zed": 1, "é": 1, "z": 1},
			[]string{"Zed", "z", "zoe", "zoë", "é"}, 5},
		{"saturating", map[string]uint64{"a": math.MaxUint64, "b": 5}, []string{"a", "b"}, math.MaxUint64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := NewStakeTable(tc.stakes)
			if got := tab.Stakers(); !slices.Equal(got, tc.stakers) {
				t.Errorf("Stakers() = %q, want %q", got, tc.stakers)
			}
			if tab.Len() != len(tc.stakers) {
				t.Errorf("Len() = %d, want %d", tab.Len(), len(tc.stakers))
			}
			if tab.Total() != tc.total {
				t.Errorf("Total() = %d, want %d", tab.Total(), tc.total)
			}
			for s, v := range tc.stakes {
				if got := tab.Stake(s); got != v {
					t.Errorf("Stake(%q) = %d, want %d", s, got, v)
				}
			}
			if got := tab.Stake("not a staker"); got != 0 {
				t.Errorf("Stake(unknown) = %d", got)
			}
		})
	}
}

func TestStakeTableImmutable(t *testing.T) {
	m := map[string]uint64{"a": 1, "b": 2}
	tab := NewStakeTable(m)
	m["a"] = 100
	m["c"] = 3
	s := tab.Stakers()
	s[0] = "mutated"
	if tab.Stake("a") != 1 || tab.Len() != 2 || tab.Stakers()[0] != "a" || tab.Total() != 3 {
		t.Fatal("StakeTable changed after construction")
	}
}

func TestNilStakeTable(t *testing.T) {
	var tab *StakeTable
	if tab.Len() != 0 || tab.Total() != 0 || tab.Stakers() != nil || tab.Stake("x") != 0 {
		t.Fatal("nil table is not empty")
	}
	for _, name := range Names() {
		a, _ := Get(name)
		if got := a.Rank("seed", nil, 3); got != nil {
			t.Errorf("%s: Rank on nil table = %q", name, got)
		}
	}
}

func TestRegistry(t *testing.T) {
	if got, want := Names(), []string{"lottery", "weighted"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
	for _, name := range Names() {
		a, err := Get(name)
		if err != nil || a.Name() != name {
			t.Fatalf("Get(%q) = %v, %v", name, a, err)
		}
	}
	a, err := Get("nope")
	if a != nil || err == nil {
		t.Fatalf("Get(unknown) = %v, %v", a, err)
	}
	if !errors.Is(err, ErrUnknownAlgorithm) {
		t.Errorf("error %v does not wrap ErrUnknownAlgorithm", err)
	}
	for _, want := range []string{`"nope"`, "lottery", "weighted"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

type fakeAlg string

func (f fakeAlg) Name() string                         { return string(f) }
func (fakeAlg) Rank(string, *StakeTable, int) []string { return nil }

func TestRegisterPanics(t *testing.T) {
	for _, a := range []Algorithm{nil, fakeAlg(""), fakeAlg("lottery"), fakeAlg("weighted")} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%v) did not panic", a)
				}
			}()
			Register(a)
		}()
	}
	if len(Names()) != 2 {
		t.Fatalf("registry changed: %q", Names())
	}
}

// TestRankContract checks the Algorithm contract for every registered rule.
func TestRankContract(t *testing.T) {
	tables := map[string]map[string]uint64{
		"empty":   {},
		"zeros":   {"a": 0, "b": 0},
		"one":     {"solo": 3},
		"three":   {"genesis": 1, "bob": 3, "alice": 2},
		"zero in": {"a": 2, "b": 0, "c": 1, "d": 0},
		"ten":     tenStakers(),
	}
	for _, name := range Names() {
		alg, _ := Get(name)
		for tname, stakes := range tables {
			tab := NewStakeTable(stakes)
			for _, n := range []int{-1, 0, 1, 2, 3, 5, 10, 100} {
				t.Run(fmt.Sprintf("%s/%s/n=%d", name, tname, n), func(t *testing.T) {
					seeds := []string{"", "abc", "zoë\n🦊"}
					for _, seed := range seeds {
						got := alg.Rank(seed, tab, n)
						if tab.Len() == 0 || n <= 0 {
							if got != nil {
								t.Fatalf("Rank = %q, want nil", got)
							}
							continue
						}
						if want := min(n, tab.Len()); len(got) != want {
							t.Fatalf("len(Rank) = %d, want %d", len(got), want)
						}
						seen := map[string]bool{}
						for _, s := range got {
							if seen[s] {
								t.Fatalf("duplicate %q in %q", s, got)
							}
							seen[s] = true
							if tab.Stake(s) == 0 {
								t.Fatalf("%q has no stake", s)
							}
						}
						// Deterministic, and a prefix of any longer ranking.
						again := alg.Rank(seed, NewStakeTable(stakes), tab.Len())
						if !slices.Equal(got, again[:len(got)]) {
							t.Fatalf("Rank(n=%d) = %q is not a prefix of %q", n, got, again)
						}
					}
				})
			}
		}
	}
}

func tenStakers() map[string]uint64 {
	m := map[string]uint64{}
	for i := range 10 {
		m[fmt.Sprintf("s%d", i)] = uint64(i%4 + 1)
	}
	return m
}

func TestStakeTableWith(t *testing.T) {
	base := map[string]uint64{"alice": 5, "bob": 3, "carol": 2, "erin": 9}
	changes := []Stake{{"bob", 0}, {"dave", 4}, {"alice", 1}, {"zed", 0}, {"dave", 6}, {"aaron", 2}}
	want := map[string]uint64{"alice": 1, "carol": 2, "erin": 9, "dave": 6, "aaron": 2}
	got := NewStakeTable(base).With(changes)
	ref := NewStakeTable(want)
	if !reflect.DeepEqual(got, ref) {
		t.Fatalf("With: %+v, want %+v", got, ref)
	}
	if b := NewStakeTable(base); b.With(nil) != b {
		t.Fatal("With(nil) copied the table")
	}
	if _, err := NewStakeTableFromList([]Stake{{"a", 1}, {"a", 2}}); !errors.Is(err, ErrDuplicateStaker) {
		t.Fatalf("duplicate staker: %v", err)
	}
}

func TestNewStakeTableOrder(t *testing.T) {
	// Prefix keys tie on the first 8 bytes; the full strings decide.
	m := map[string]uint64{"stakers-b": 1, "stakers-a": 1, "stakers": 1, "stakers\x00": 1, "a": 1, "": 1, "\xff": 1}
	for i := range 600 { // past the radix threshold
		m[fmt.Sprintf("%08x-%d", i*7919%1000, i)] = uint64(i + 1)
	}
	tab := NewStakeTable(m)
	if tab.Len() != len(m) || !slices.IsSorted(tab.Stakers()) {
		t.Fatalf("not sorted or lost stakers: %d of %d", tab.Len(), len(m))
	}
}
