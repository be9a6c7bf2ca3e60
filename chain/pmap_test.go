package chain

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
)

// checkPmap fails unless m holds exactly want.
func checkPmap(t *testing.T, m *pmap[uint64], want map[Address]uint64) {
	t.Helper()
	if m.Len() != len(want) {
		t.Fatalf("Len %d, want %d", m.Len(), len(want))
	}
	for k, v := range want {
		if got, ok := m.get(k); !ok || got != v {
			t.Fatalf("get(%s) = %d, %v; want %d", k, got, ok, v)
		}
	}
	seen := 0
	m.each(func(k Address, v uint64) bool {
		seen++
		if w, ok := want[k]; !ok || w != v {
			t.Fatalf("each yields %s=%d, want %d (present %v)", k, v, w, ok)
		}
		return true
	})
	if seen != len(want) {
		t.Fatalf("each yields %d keys, want %d", seen, len(want))
	}
}

// TestPmapRandomOps runs random sets and deletes against a Go map, taking
// copies along the way: every copy must keep the contents it was taken
// with while the original and other copies change. The weak hashes force
// deep tries and full-hash collisions (collision lists).
func TestPmapRandomOps(t *testing.T) {
	hashes := []struct {
		name string
		f    func(pkey) uint64
	}{
		{"maphash", phash},
		{"8 values", func(k pkey) uint64 { return phash(k) & 7 }},
		{"shared low bits", func(k pkey) uint64 { return phash(k) << 40 }},
		{"one value", func(pkey) uint64 { return 1 << 63 }},
	}
	for _, hf := range hashes {
		t.Run(hf.name, func(t *testing.T) {
			defer func(f func(pkey) uint64) { phashOf = f }(phashOf)
			phashOf = hf.f
			rng := rand.New(rand.NewPCG(1, uint64(len(hf.name))))
			type version struct {
				m    *pmap[uint64]
				want map[Address]uint64
			}
			live := &version{m: &pmap[uint64]{}, want: map[Address]uint64{}}
			var frozen []*version
			keys := 300
			if hf.name == "one value" {
				keys = 40 // one collision list: quadratic
			}
			for op := 0; op < 6000; op++ {
				k := Address(fmt.Sprintf("k%d", rng.IntN(keys)))
				switch r := rng.IntN(10); {
				case r < 6:
					v := rng.Uint64N(4) // repeats: setting the same value
					old, had := live.m.set(k, v)
					if w, ok := live.want[k]; ok != had || w != old {
						t.Fatalf("set(%s) returned %d, %v; want %d, %v", k, old, had, w, ok)
					}
					live.want[k] = v
				case r < 9:
					old, had := live.m.del(k)
					if w, ok := live.want[k]; ok != had || w != old {
						t.Fatalf("del(%s) returned %d, %v; want %d, %v", k, old, had, w, ok)
					}
					delete(live.want, k)
				default:
					c := &version{m: &pmap[uint64]{}, want: maps.Clone(live.want)}
					live.m.cloneTo(c.m)
					if rng.IntN(2) == 0 {
						frozen = append(frozen, c)
					} else { // write the copy, freeze the original
						frozen = append(frozen, live)
						live = c
					}
				}
			}
			checkPmap(t, live.m, live.want)
			for _, f := range frozen {
				checkPmap(t, f.m, f.want)
			}
			if len(frozen) < 100 {
				t.Fatalf("only %d copies taken", len(frozen))
			}
		})
	}
}

// TestPmapEqual compares maps that share nodes and maps that do not.
func TestPmapEqual(t *testing.T) {
	var a, b, c pmap[uint64]
	for i := range 1000 {
		a.set(Address(fmt.Sprint(i)), uint64(i))
		b.set(Address(fmt.Sprint(999-i)), uint64(999-i))
	}
	a.cloneTo(&c)
	if !a.equal(&b) || !a.equal(&c) {
		t.Fatal("equal maps compare unequal")
	}
	c.set("7", 8)
	if a.equal(&c) || c.equal(&a) {
		t.Fatal("a changed copy compares equal")
	}
	c.set("7", 7)
	c.del("8")
	c.set("new", 8)
	if a.equal(&c) {
		t.Fatal("maps with different keys compare equal")
	}
}

// TestPmapConcurrentReaders reads copies from many goroutines while the
// original keeps changing and copies keep being taken (run with -race).
func TestPmapConcurrentReaders(t *testing.T) {
	var live pmap[uint64]
	const keys = 2000
	for i := range keys {
		live.set(Address(fmt.Sprint(i)), 0)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	report := func(err error) {
		select {
		case errs <- err:
		default: // one is enough
		}
	}
	for round := uint64(1); round <= 50; round++ {
		c := &pmap[uint64]{}
		live.cloneTo(c)
		want := round - 1
		wg.Add(2)
		for range 2 {
			go func() {
				defer wg.Done()
				// Every key of this copy holds the round it was taken in.
				for i := range keys {
					if v, _ := c.get(Address(fmt.Sprint(i))); v != want {
						report(fmt.Errorf("copy of round %d: key %d holds %d", want, i, v))
						return
					}
				}
				c.each(func(_ Address, v uint64) bool {
					if v != want {
						report(fmt.Errorf("copy of round %d: each yields %d", want, v))
						return false
					}
					return true
				})
			}()
		}
		for i := range keys {
			live.set(Address(fmt.Sprint(i)), round)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Every string has its own key and comes back from it unchanged, whatever
// form the trie holds it in: an address as 20 bytes, a short key inline,
// a long one (an offence key, an address in capitals) as a string.
func TestPkeyForms(t *testing.T) {
	addr := Address("00112233445566778899aabbccddeeff00112233")
	cases := []struct {
		key  Address
		form uint8
	}{
		{addr, pkeyAddr},
		{Address("ffffffffffffffffffffffffffffffffffffffff"), pkeyAddr},
		{Address("00112233445566778899AABBCCDDEEFF00112233"), pkeyLong},
		{Address("00112233445566778899aabbccddeeff0011223g"), pkeyLong},
		{addr[:39], pkeyLong},
		{addr + "0", pkeyLong},
		{Address(""), 0},
		{Address("aa"), 2},
		{addr[:20], 20},
		{addr[:21], pkeyLong},
		{releaseKey(7), 8},
		{offenceKey(classEquivocation, addr, 9), pkeyLong},
	}
	m := &pmap[int]{}
	for i, c := range cases {
		k := pkeyOf(c.key)
		if k.n != c.form {
			t.Errorf("%q held in form %#x, want %#x", c.key, k.n, c.form)
		}
		if got := k.address(); got != c.key {
			t.Errorf("%q comes back as %q", c.key, got)
		}
		m.set(c.key, i)
	}
	if m.Len() != len(cases) {
		t.Fatalf("%d keys for %d distinct strings", m.Len(), len(cases))
	}
	for i, c := range cases {
		if v, ok := m.get(c.key); !ok || v != i {
			t.Errorf("get(%q) = %d, %v; want %d", c.key, v, ok, i)
		}
	}
}
