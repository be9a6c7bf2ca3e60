package feed

import (
	"errors"
	"testing"
	"time"
)

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
	}
	panic("unreachable")
}

// TestLossyPolicies: a subscriber that does not read keeps at most its
// count; DropNewest keeps the first values, DropOldest the last, and both
// count what they lost; the sender never waits.
func TestLossyPolicies(t *testing.T) {
	for _, tc := range []struct {
		name string
		pol  Policy[int]
		want []int
	}{
		{"drop newest", DropNewest[int](3), []int{0, 1, 2}},
		{"drop oldest", DropOldest[int](3), []int{7, 8, 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New[int](Options{})
			s, err := f.Subscribe(tc.pol)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				if n := f.Send(i); n != 1 {
					t.Fatalf("Send reached %d subscribers", n)
				}
			}
			for _, w := range tc.want {
				if v := recv(t, s.C()); v != w {
					t.Fatalf("got %d, want %d", v, w)
				}
			}
			if st := s.Stats(); st.Dropped != 7 || f.Stats().Dropped != 7 {
				t.Fatalf("dropped %d (feed %d), want 7", st.Dropped, f.Stats().Dropped)
			}
			s.Cancel()
			s.Cancel()
			if _, ok := <-s.C(); ok {
				t.Fatal("channel open after Cancel")
			}
			if f.Send(1) != 0 {
				t.Fatal("a cancelled subscriber still receives")
			}
		})
	}
}

// sized is a value with a size, for the coalescing policy.
type sized struct {
	items []int // what a merge keeps, oldest first
	bytes int
}

func sizeOf(v sized) int { return v.bytes }

// mergeKeep folds the queue into one value that keeps every item and
// reports the whole as budget-sized.
func mergeKeep(q []sized, budget int) (sized, int) {
	var m sized
	for _, v := range q {
		m.items = append(m.items, v.items...)
	}
	m.bytes = min(budget, 10)
	return m, len(q) - 1
}

// TestCoalesceIsLosslessAndBounded: a subscriber that sleeps while many
// values are sent holds no more than its budget (plus the newest value),
// and when it reads again gets every item the merge kept, in order.
func TestCoalesceIsLosslessAndBounded(t *testing.T) {
	f := New[sized](Options{})
	const budget = 100
	s, err := f.Subscribe(Coalesce(budget, sizeOf, mergeKeep))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Cancel()
	const n = 1000
	for i := range n {
		f.Send(sized{items: []int{i}, bytes: 30})
	}
	if p := s.Stats().PeakBytes; p > budget+30 {
		t.Fatalf("peak %d bytes queued, budget %d", p, budget)
	}
	if s.Stats().Coalesced == 0 {
		t.Fatal("nothing coalesced past the budget")
	}
	next := 0
	for next < n {
		v := recv(t, s.C())
		for _, it := range v.items {
			if it != next {
				t.Fatalf("item %d, want %d", it, next)
			}
			next++
		}
	}
}

// TestCoalesceReaderThatKeepsUp: one value per send, nothing merged.
func TestCoalesceReaderThatKeepsUp(t *testing.T) {
	f := New[sized](Options{})
	s, _ := f.Subscribe(Coalesce(10, sizeOf, mergeKeep))
	defer s.Cancel()
	for i := range 50 {
		f.Send(sized{items: []int{i}, bytes: 1000}) // each alone over budget
		if v := recv(t, s.C()); len(v.items) != 1 || v.items[0] != i {
			t.Fatalf("send %d: got %v", i, v.items)
		}
	}
	if c := s.Stats().Coalesced; c != 0 {
		t.Fatalf("%d coalesced for a reader that kept up", c)
	}
}

// TestSubscribersBoundedAndClose: past MaxSubscribers Subscribe refuses;
// a zero policy is refused; Close closes every channel, and later
// subscriptions are closed at once.
func TestSubscribersBoundedAndClose(t *testing.T) {
	f := New[int](Options{MaxSubscribers: 2})
	if _, err := f.Subscribe(Policy[int]{}); err == nil {
		t.Fatal("a zero policy was accepted")
	}
	a, _ := f.Subscribe(DropNewest[int](1))
	b, _ := f.Subscribe(Coalesce(10, func(int) int { return 1 }, func(q []int, _ int) (int, int) { return q[len(q)-1], len(q) - 1 }))
	if _, err := f.Subscribe(DropNewest[int](1)); !errors.Is(err, ErrTooManySubscribers) {
		t.Fatalf("third subscriber: %v, want ErrTooManySubscribers", err)
	}
	f.Send(1)
	f.Close()
	f.Close()
	for _, s := range []*Subscription[int]{a, b} {
		for range s.C() { // drains what is left, then sees the close
		}
	}
	c, err := f.Subscribe(DropOldest[int](1))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := <-c.C(); ok {
		t.Fatal("a subscription on a closed feed is open")
	}
	if f.Send(2) != 0 {
		t.Fatal("a closed feed still sends")
	}
}

// TestConcurrentSendCancelClose: senders, readers that cancel halfway and
// a Close, all at once (run with -race): no send on a closed channel, no
// deadlock, every channel closed at the end.
func TestConcurrentSendCancelClose(t *testing.T) {
	f := New[int](Options{MaxSubscribers: 64})
	policies := []Policy[int]{
		DropNewest[int](4), DropOldest[int](4),
		Coalesce(8, func(int) int { return 1 }, func(q []int, _ int) (int, int) { return q[len(q)-1], len(q) - 1 }),
	}
	var subs []*Subscription[int]
	for i := range 30 {
		s, err := f.Subscribe(policies[i%len(policies)])
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 2000 {
				f.Send(w*10000 + i)
			}
		}()
	}
	for i, s := range subs {
		go func() {
			defer func() { done <- struct{}{} }()
			n := 0
			for range s.C() {
				if n++; i%2 == 0 && n == 50 {
					s.Cancel()
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	f.Close()
	for range subs {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a subscriber's channel never closed")
		}
	}
}
