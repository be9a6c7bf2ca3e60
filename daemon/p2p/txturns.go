package p2p

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Tx messages are validated one at a time, in the order they came.
//
// Order matters: a sender's nonces run across a peer's messages, and a
// message judged before the one holding the nonces below its own has its
// transactions queued behind a gap. The node then does not forward it as
// it came, and once they become executable gossips them again as its own
// message, a copy every peer receives once more. Validated asynchronously
// in whatever order the goroutines were scheduled (until 2026-12-07), the
// newest of a burst often went first.
//
// The tx router's validation worker runs admitTxMessage inline, in arrival
// order: the cheap checks (the count, the peer's budget) and a turn in
// txTurns. The expensive part, validateTxs, runs asynchronously as before
// and waits for its turn. So the router's queue drains at once and a peer
// holds at most maxTxInflight of the maxTxPending turns: one peer's flood
// cannot crowd the others' messages out of the queue, as it could with the
// whole validation inline.

// maxTxPending bounds the tx messages holding a turn (validated or
// waiting), whoever sent them; beyond it a message is dropped unpenalised.
// Each holds its raw message, at most maxTxMessageSize: 72 MiB at most.
const maxTxPending = 128

// abandonedTurnAfter: a turn whose validator call has not begun this long
// after the turn was given is passed over. Pubsub starts the call at once
// unless it throttles it (it then never comes), and the turns given are
// far fewer than its throttles (1024 per topic, 8192 in all).
const abandonedTurnAfter = time.Second

// txTurns hands tx messages their turns in the order they are given.
type txTurns struct {
	mu    sync.Mutex
	queue []*txTurn // given and not over; the head's turn is now
}

// txTurn is one message's turn.
type txTurn struct {
	given   time.Time
	arrived bool          // its validator call began (txTurns.mu)
	ready   chan struct{} // closed when the turn comes
	done    func()        // called once, when the turn is over or passed over
}

// full reports whether maxTxPending turns are out (after passing over
// abandoned ones): give would refuse.
func (q *txTurns) full(now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.passOverLocked(now)
	return len(q.queue) >= maxTxPending
}

// give returns the next turn, or nil when maxTxPending turns are out. done
// is called once when the turn is over (end) or passed over.
func (q *txTurns) give(now time.Time, done func()) *txTurn {
	q.mu.Lock()
	defer q.mu.Unlock()
	// Abandoned turns are passed over here too: were every turn out
	// abandoned, no waiter would be left to pass them over.
	q.passOverLocked(now)
	if len(q.queue) >= maxTxPending {
		return nil
	}
	t := &txTurn{given: now, ready: make(chan struct{}), done: done}
	if len(q.queue) == 0 {
		close(t.ready)
	}
	q.queue = append(q.queue, t)
	return t
}

// wait returns true when t's turn comes, false when ctx ends first (the
// turn is then over). While waiting it passes over abandoned turns.
func (q *txTurns) wait(ctx context.Context, t *txTurn) bool {
	q.mu.Lock()
	t.arrived = true
	q.mu.Unlock()
	tick := time.NewTicker(abandonedTurnAfter / 4)
	defer tick.Stop()
	for {
		select {
		case <-t.ready:
			return true
		case <-ctx.Done():
			q.end(t)
			return false
		case now := <-tick.C:
			q.passOver(now)
		}
	}
}

// end is t's turn over: the next one's comes.
func (q *txTurns) end(t *txTurn) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := slices.Index(q.queue, t)
	if i < 0 {
		return // passed over before it came (its call began late)
	}
	q.remove(i)
}

// passOver removes the turns at the head whose calls never began.
func (q *txTurns) passOver(now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.passOverLocked(now)
}

func (q *txTurns) passOverLocked(now time.Time) {
	for len(q.queue) > 0 && !q.queue[0].arrived && now.Sub(q.queue[0].given) > abandonedTurnAfter {
		q.remove(0)
	}
}

// remove takes out the turn at i (q.mu held), calls its done, and starts
// the next turn when i was the head.
func (q *txTurns) remove(i int) {
	t := q.queue[i]
	q.queue = slices.Delete(q.queue, i, i+1)
	if i == 0 && len(q.queue) > 0 {
		close(q.queue[0].ready)
	}
	t.done()
}
