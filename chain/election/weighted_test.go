package election

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"testing"
)

func TestWeightedInline(t *testing.T) {
	// Rankings computed by weighted_rank in testdata/lottery_reference.py.
	tests := []struct {
		name   string
		stakes map[string]uint64
		seed   string
		want   []string
	}{
		{"design", map[string]uint64{"genesis": 1, "bob": 3, "alice": 2}, "abc",
			[]string{"alice", "bob", "genesis"}},
		{"design-empty-seed", map[string]uint64{"genesis": 1, "bob": 3, "alice": 2}, "",
			[]string{"bob", "genesis", "alice"}},
		{"whale-fallback", map[string]uint64{"whale": 1 << 40, "a": 1, "b": 2, "c": 7}, "fall",
			[]string{"whale", "c", "b", "a"}},
	}
	w, _ := Get("weighted")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := NewStakeTable(tc.stakes)
			if got := w.Rank(tc.seed, tab, len(tc.want)); !slices.Equal(got, tc.want) {
				t.Errorf("Rank = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWeightedPythonVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/weighted_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vecs []struct {
		Name    string            `json:"name"`
		Stakes  map[string]uint64 `json:"stakes"`
		Seed    string            `json:"seed"`
		Ranking []string          `json:"ranking"`
	}
	if err := json.Unmarshal(data, &vecs); err != nil {
		t.Fatal(err)
	}
	if len(vecs) < 5 {
		t.Fatalf("only %d vectors", len(vecs))
	}
	w, _ := Get("weighted")
	for _, v := range vecs {
		t.Run(v.Name, func(t *testing.T) {
			tab := NewStakeTable(v.Stakes)
			if got := w.Rank(v.Seed, tab, len(v.Ranking)); !slices.Equal(got, v.Ranking) {
				t.Errorf("Rank = %q, python %q", got, v.Ranking)
			}
		})
	}
}

// winShares runs the weighted election for seeds and returns, per position,
// the share of each staker.
func winShares(tab *StakeTable, seeds, n int) []map[string]float64 {
	w, _ := Get("weighted")
	counts := make([]map[string]int, n)
	for i := range counts {
		counts[i] = map[string]int{}
	}
	for i := range seeds {
		for pos, s := range w.Rank(fmt.Sprintf("seed-%d", i), tab, n) {
			counts[pos][s]++
		}
	}
	shares := make([]map[string]float64, n)
	for pos, c := range counts {
		shares[pos] = map[string]float64{}
		for s, k := range c {
			shares[pos][s] = float64(k) / float64(seeds)
		}
	}
	return shares
}

func TestWeightedStatistics(t *testing.T) {
	tab := NewStakeTable(map[string]uint64{"a": 1, "b": 2, "c": 7})
	shares := winShares(tab, 20000, 2)
	w := map[string]float64{"a": 0.1, "b": 0.2, "c": 0.7}
	for s, p := range w {
		if got := shares[0][s]; math.Abs(got-p) > 0.012 {
			t.Errorf("first place share of %s = %.4f, want %.2f", s, got, p)
		}
		// Second place: sum over first i != s of w_i * w_s/(1-w_i).
		var p2 float64
		for f, pf := range w {
			if f != s {
				p2 += pf * p / (1 - pf)
			}
		}
		if got := shares[1][s]; math.Abs(got-p2) > 0.012 {
			t.Errorf("second place share of %s = %.4f, want %.4f", s, got, p2)
		}
	}
}

// TestWeightedFallback forces the bounded-draws fallback (a whale holds
// almost everything) and checks it still samples in proportion to stake.
func TestWeightedFallback(t *testing.T) {
	tab := NewStakeTable(map[string]uint64{"whale": 1 << 40, "a": 1, "b": 2, "c": 7})
	shares := winShares(tab, 4000, 4)
	if shares[0]["whale"] != 1 {
		t.Fatalf("whale first share = %v", shares[0]["whale"])
	}
	for s, p := range map[string]float64{"a": 0.1, "b": 0.2, "c": 0.7} {
		if got := shares[1][s]; math.Abs(got-p) > 0.03 {
			t.Errorf("second place share of %s = %.4f, want %.2f", s, got, p)
		}
	}
}

func TestWeightedSaturated(t *testing.T) {
	w, _ := Get("weighted")
	// b's interval lies past 2^64-1: no weight, ranked last in table order.
	tab := NewStakeTable(map[string]uint64{"a": math.MaxUint64, "b": 5, "c": 1})
	for _, seed := range []string{"x", "y", "z"} {
		if got, want := w.Rank(seed, tab, 3), []string{"a", "b", "c"}; !slices.Equal(got, want) {
			t.Fatalf("Rank = %q, want %q", got, want)
		}
	}
	// Clamped: b keeps weight 1 of 2^64-1.
	tab = NewStakeTable(map[string]uint64{"a": math.MaxUint64 - 1, "b": 5})
	if got := w.Rank("x", tab, 2); len(got) != 2 || got[0] == got[1] {
		t.Fatalf("Rank = %q", got)
	}
}

func TestWeightedLargeN(t *testing.T) {
	// n > smallPicked uses the bitset; n == Len forces the fallback to
	// collect the tail.
	w, _ := Get("weighted")
	stakes := map[string]uint64{}
	for i := range 300 {
		stakes[fmt.Sprintf("s%03d", i)] = uint64(i%9 + 1)
	}
	tab := NewStakeTable(stakes)
	for _, n := range []int{33, 100, 300, 1000} {
		got := w.Rank("large", tab, n)
		if len(got) != min(n, 300) {
			t.Fatalf("n=%d: len %d", n, len(got))
		}
		sorted := slices.Clone(got)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != len(got) {
			t.Fatalf("n=%d: duplicates", n)
		}
		if full := w.Rank("large", tab, 300); !slices.Equal(full[:len(got)], got) {
			t.Fatalf("n=%d: not a prefix", n)
		}
	}
}

func TestSearchCum(t *testing.T) {
	cum := []uint64{1, 3, 3, 10} // stakes 1, 2, 0(can't happen, still skipped), 7
	for x, want := range []int{0, 1, 1, 3, 3, 3, 3, 3, 3, 3} {
		if got := searchCum(cum, uint64(x)); got != want {
			t.Errorf("searchCum(%d) = %d, want %d", x, got, want)
		}
	}
}

func TestWeightedAllocs(t *testing.T) {
	w, _ := Get("weighted")
	tab := NewStakeTable(tenStakers())
	// Only the result slice.
	if n := testing.AllocsPerRun(100, func() { w.Rank("seed", tab, 8) }); n > 1 {
		t.Fatalf("Rank allocates %v times", n)
	}
}
