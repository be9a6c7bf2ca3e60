package mempool

import (
	"testing"
	"time"
)

// TestRun: a sender's pending run from a nonce, bounded in count and
// bytes; queued transactions are never served.
func TestRun(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{})
	for _, n := range []uint64{1, 2, 3, 4, 5, 7, 8} { // 6 missing: 7 and 8 queued
		mustAdd(t, p, st, payBob(alice, 1, n))
	}
	nonces := func(from uint64, limit, maxBytes int) []uint64 {
		var out []uint64
		for _, tx := range p.Run(alice.Addr, from, limit, maxBytes) {
			out = append(out, tx.Nonce)
		}
		return out
	}
	first := payBob(alice, 1, 1)
	one := encodedSize(&first)
	for _, tc := range []struct {
		name            string
		from            uint64
		limit, maxBytes int
		want            []uint64
	}{
		{"all pending", 1, 100, 1 << 20, []uint64{1, 2, 3, 4, 5}},
		{"from the middle", 3, 100, 1 << 20, []uint64{3, 4, 5}},
		{"below the account nonce", 0, 100, 1 << 20, []uint64{1, 2, 3, 4, 5}},
		{"limit", 2, 2, 1 << 20, []uint64{2, 3}},
		{"bytes", 1, 100, 2*one + one/2, []uint64{1, 2}},
		{"the first even over the bytes", 1, 100, 1, []uint64{1}},
		{"queued never", 7, 100, 1 << 20, nil},
		{"in the gap", 6, 100, 1 << 20, nil},
		{"zero limit", 1, 0, 1 << 20, nil},
	} {
		got := nonces(tc.from, tc.limit, tc.maxBytes)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
	if got := p.Run(bob.Addr, 1, 10, 1<<20); got != nil {
		t.Errorf("unknown sender: %v", got)
	}
}

// TestLingering: only transactions pending for a wait are handed out to
// be gossiped again, each then after twice and four times the wait, at
// most limit at a time, never the queued ones.
func TestLingering(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{})
	for _, n := range []uint64{1, 2, 3, 5} { // 5 queued
		mustAdd(t, p, st, payBob(alice, 1, n))
	}
	const h = time.Hour
	t0 := time.Now()
	count := func(at time.Duration, limit int) int { return len(p.Lingering(t0.Add(at), h, limit)) }
	for _, step := range []struct {
		at    time.Duration
		limit int
		want  int
	}{
		{0, 10, 0},          // fresh: gossiped when they became pending
		{h, 2, 2},           // lingering, the oldest first, at most limit
		{h, 10, 1},          // the third; the first two were just sent
		{2 * h, 10, 0},      // now twice the wait
		{3 * h, 10, 3},      // twice the wait after the last
		{6 * h, 10, 0},      //
		{7 * h, 10, 3},      // four times the wait, at most
		{11 * h, 10, 3},     //
		{11*h + h/2, 10, 0}, //
	} {
		if got := count(step.at, step.limit); got != step.want {
			t.Fatalf("at %v (limit %d): %d handed out, want %d", step.at, step.limit, got, step.want)
		}
	}
}
