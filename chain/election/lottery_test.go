package election

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

// pyH is H from the original, written plainly: hex(SHA-256(json.dumps(x))).
func pyH(x string) string {
	d := sha256.Sum256([]byte(pyQuote(x)))
	return hex.EncodeToString(d[:])
}

func TestPyH(t *testing.T) {
	// Values printed by python3 with hashlib + json.dumps.
	tests := []struct{ in, want string }{
		{"abc", "6cc43f858fbb763301637b5af970e2a46b46f461f27e5a0f41e009c59b827b25"},
		{"", "12ae32cb1ec02d01eda3581b127c1fee3b0dc53572ed6baf239721a03d82e126"},
		{"zoë", "41b49787f585a2faf72fb738793ef4be8d77a61d5886b28327fbf745f1735f22"},
		{"6cc43f858fbb763301637b5af970e2a46b46f461f27e5a0f41e009c59b827b25",
			"08deb2e5d41a9be8c89dbc8b4debb66f0e7895c4c3db148af0bd67b9e5c697ce"},
	}
	for _, tc := range tests {
		if got := pyH(tc.in); got != tc.want {
			t.Errorf("H(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// originalWinner transcribes the Python original literally (each lot
// recomputed from scratch, math/big offsets) to cross-check the fast path.
func originalWinner(stakes map[string]uint64, seed string) string {
	tab := NewStakeTable(stakes)
	ref, _ := new(big.Int).SetString(pyH(seed), 16)
	var winner string
	var least *big.Int
	for _, s := range tab.Stakers() {
		for it := uint64(1); it <= tab.Stake(s); it++ {
			h := s + seed
			for range it {
				h = pyH(h)
			}
			v, _ := new(big.Int).SetString(h, 16)
			off := new(big.Int).Abs(v.Sub(v, ref))
			if least == nil || off.Cmp(least) < 0 {
				least, winner = off, s
			}
		}
	}
	return winner
}

func TestLotteryInline(t *testing.T) {
	// Winners and rankings computed by testdata/lottery_reference.py.
	tests := []struct {
		name   string
		stakes map[string]uint64
		seed   string
		want   []string
	}{
		{"design", map[string]uint64{"genesis": 1, "bob": 3, "alice": 2}, "abc",
			[]string{"bob", "alice", "genesis"}},
		{"newline-key", map[string]uint64{"line1\nline2": 3, "carol": 3, "dave\r\n": 2}, "blockhash-1",
			[]string{"line1\nline2", "carol", "dave\r\n"}},
		{"non-ascii", map[string]uint64{"zoë": 4, "zoe": 4, "ålice": 2, "Ωmega": 3}, "ünïcödé seed",
			[]string{"zoe", "zoë", "Ωmega", "ålice"}},
		{"emoji", map[string]uint64{"🦊fox": 3, "bob": 3, "𝄞clef": 2, "a😀b": 1}, "seed🚀",
			[]string{"🦊fox", "𝄞clef", "bob", "a😀b"}},
		{"quote-backslash", map[string]uint64{`q"b\s`: 3, "plain": 3, `\"\`: 2, "slash/": 1}, `se"ed\`,
			[]string{`q"b\s`, "slash/", "plain", `\"\`}},
		{"tie-empty", map[string]uint64{
			"b473f2a49b5543ffac0b33bb51eb839f7ac30975e641920f28823ad76370bc01": 2,
			"tie-empty-1": 3, "zz-other": 2}, "",
			[]string{"b473f2a49b5543ffac0b33bb51eb839f7ac30975e641920f28823ad76370bc01", "tie-empty-1", "zz-other"}},
		{"zero stake dropped", map[string]uint64{"genesis": 1, "bob": 3, "alice": 2, "zed": 0}, "abc",
			[]string{"bob", "alice", "genesis"}},
	}
	lot, err := Get("lottery")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := NewStakeTable(tc.stakes)
			if got := lot.Rank(tc.seed, tab, 10); !slices.Equal(got, tc.want) {
				t.Errorf("Rank = %q, want %q", got, tc.want)
			}
			if got := lot.Rank(tc.seed, tab, 1); !slices.Equal(got, tc.want[:1]) {
				t.Errorf("winner = %q, want %q", got, tc.want[0])
			}
			if got := originalWinner(tc.stakes, tc.seed); got != tc.want[0] {
				t.Errorf("literal original picks %q, want %q", got, tc.want[0])
			}
		})
	}
}

type lotteryVector struct {
	Name    string            `json:"name"`
	Stakes  map[string]uint64 `json:"stakes"`
	Seed    string            `json:"seed"`
	Winner  string            `json:"winner"`
	Ranking []string          `json:"ranking"`
}

func TestLotteryPythonVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/lottery_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vecs []lotteryVector
	if err := json.Unmarshal(data, &vecs); err != nil {
		t.Fatal(err)
	}
	if len(vecs) < 10 || vecs[0].Name != "design" || vecs[0].Winner != "bob" {
		t.Fatalf("unexpected vector file (%d vectors)", len(vecs))
	}
	lot, _ := Get("lottery")
	for _, v := range vecs {
		t.Run(v.Name, func(t *testing.T) {
			tab := NewStakeTable(v.Stakes)
			got := lot.Rank(v.Seed, tab, tab.Len())
			if !slices.Equal(got, v.Ranking) {
				t.Fatalf("Rank = %q, python %q", got, v.Ranking)
			}
			for n := 1; n <= len(v.Ranking); n++ {
				if got := lot.Rank(v.Seed, tab, n); !slices.Equal(got, v.Ranking[:n]) {
					t.Fatalf("Rank(n=%d) = %q, want %q", n, got, v.Ranking[:n])
				}
			}
			if got[0] != v.Winner {
				t.Fatalf("winner %q, python %q", got[0], v.Winner)
			}
		})
	}
}

// TestLotteryMatchesLiteralOriginal cross-checks the optimized lottery
// against the literal transcription on random small tables.
func TestLotteryMatchesLiteralOriginal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lot, _ := Get("lottery")
	for i := range 40 {
		stakes := map[string]uint64{}
		for k := range 1 + rng.IntN(5) {
			stakes[fmt.Sprintf("k%d-%x", k, rng.Uint32())] = uint64(rng.IntN(6))
		}
		seed := fmt.Sprintf("seed-%d", i)
		got := lot.Rank(seed, NewStakeTable(stakes), 1)
		want := originalWinner(stakes, seed)
		if want == "" {
			if got != nil {
				t.Fatalf("empty table: Rank = %q", got)
			}
			continue
		}
		if len(got) != 1 || got[0] != want {
			t.Fatalf("stakes %v seed %q: Rank = %q, original %q", stakes, seed, got, want)
		}
	}
}

func TestAbsDiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	toBig := func(a u256) *big.Int {
		var b [32]byte
		for i, w := range a {
			for k := range 8 {
				b[i*8+k] = byte(w >> (56 - 8*k))
			}
		}
		return new(big.Int).SetBytes(b[:])
	}
	for range 1000 {
		var a, b u256
		for i := range a {
			a[i], b[i] = rng.Uint64(), rng.Uint64()
		}
		if rng.IntN(2) == 0 {
			b[0], b[1] = a[0], a[1] // exercise borrows across equal words
		}
		want := new(big.Int).Abs(new(big.Int).Sub(toBig(a), toBig(b)))
		if got := toBig(absDiff(a, b)); got.Cmp(want) != 0 {
			t.Fatalf("absDiff(%x, %x) = %x, want %x", a, b, got, want)
		}
		if a.less(b) != (toBig(a).Cmp(toBig(b)) < 0) {
			t.Fatalf("less(%x, %x) wrong", a, b)
		}
	}
}

func TestLotteryNoAllocsInChain(t *testing.T) {
	first := sha256.Sum256([]byte("x"))
	var ref u256
	if n := testing.AllocsPerRun(10, func() { bestOffset(first, 1000, ref) }); n != 0 {
		t.Fatalf("bestOffset allocates %v times", n)
	}
}

// TestLotteryRankMatchesFullSort: picking the n best over ranges of
// stakers on several cores gives what a stable sort of every staker's best
// offset gives, for small tables (one core) and large ones (all cores).
func TestLotteryRankMatchesFullSort(t *testing.T) {
	lot := lottery{}
	for _, size := range []int{1, 7, 300, 3000} {
		stakes := map[string]uint64{}
		for i := range size {
			stakes[fmt.Sprintf("staker-%05d", i)] = uint64(i%5 + 1)
		}
		stakes["whale"] = 5000 // one long chain among short ones
		tab := NewStakeTable(stakes)
		for _, seed := range []string{"abc", "0f0f"} {
			ref := lotDigestRef(seed)
			offs := make([]u256, tab.Len())
			for i, s := range tab.stakers {
				first, _ := lotDigest(nil, s+seed)
				offs[i] = bestOffset(first, tab.stakes[i], ref)
			}
			idx := make([]int, len(offs))
			for i := range idx {
				idx[i] = i
			}
			slices.SortStableFunc(idx, func(a, b int) int {
				switch {
				case offs[a].less(offs[b]):
					return -1
				case offs[b].less(offs[a]):
					return 1
				}
				return 0
			})
			for _, n := range []int{1, 3, 8, tab.Len() + 2} {
				got := lot.Rank(seed, tab, n)
				for i := range got {
					if got[i] != tab.stakers[idx[i]] {
						t.Fatalf("size %d seed %q n %d: rank %d is %s, full sort says %s", size, seed, n, i, got[i], tab.stakers[idx[i]])
					}
				}
				if len(got) != min(n, tab.Len()) {
					t.Fatalf("size %d n %d: %d candidates", size, n, len(got))
				}
			}
		}
	}
}

func lotDigestRef(seed string) u256 {
	d, _ := lotDigest(nil, seed)
	return u256FromDigest(&d)
}
