package p2p

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/poslab/posd/chain"
)

// Sync: how a node that is behind catches up.
//
// Every peer's status (height, head) is polled every pollInterval; a peer
// ahead of us (or at our height on another head, or one that announced a
// block we cannot connect) is a candidate. Candidates are tried best
// first: peers that served us before, then fewer recent failures, in
// random order otherwise (a claimed height is not evidence: anyone can
// claim 2^40). The first range request is hedged: the first candidate is
// asked, and every hedgeDelay without an answer the next one is asked as
// well; the first to answer serves the session, the others are hung up
// on. A peer that does not answer within syncFirstByteTimeout, stalls
// for syncReadTimeout between blocks, or serves nothing new while
// claiming more, is left alone for a backoff that doubles with each
// consecutive failure (5 s up to 5 min). A peer that sends what breaks a
// rule (undecodable, out of order, too large, a block the node rejects)
// is left alone for longer and penalised (see score.go). So silent peers
// cost a catch-up about hedgeDelay each, once.
const (
	syncRequestLen = 8 + 4
	maxStepBack    = 64 // blocks stepped back (doubling) before restarting from 0
	// catchUpBlocks: a session starting further behind calls Config.CatchUp.
	catchUpBlocks  = 256
	logEveryBlocks = 1000
	// syncOpenTimeout bounds opening a stream and sending the request.
	syncOpenTimeout = 5 * time.Second
	// syncFirstByteTimeout is how long a peer has to start answering.
	syncFirstByteTimeout = 5 * time.Second
	// syncReadTimeout bounds the wait for each further block.
	syncReadTimeout = 10 * time.Second
	// syncRequestTimeout bounds one range request, however slow the peer.
	syncRequestTimeout = 2 * time.Minute
	// hedgeDelay: without an answer by then, the next candidate is asked too.
	hedgeDelay = 500 * time.Millisecond
	// maxHedge bounds the peers asked at once.
	maxHedge = 8
	// gossipLead and gossipGrace: a peer at most gossipLead blocks ahead
	// is synced from only once gossip has failed for gossipGrace to bring
	// the head it had when the sync loop found it ahead (syncCandidates).
	gossipLead  = 8
	gossipGrace = time.Second
	// Backoffs: after a failure (timeout, network), doubling from
	// backoffMin to backoffMax; after a rule break, at least backoffRule.
	backoffMin  = 5 * time.Second
	backoffMax  = 5 * time.Minute
	backoffRule = time.Minute
	// syncBatchTxs and syncBatchBytes bound what sync buffers before
	// handing blocks to the node, which validates and commits them as one
	// batch: whichever is reached first. The bytes are the blocks' encoded
	// sizes. A batch costs far more than that while it is committed: about
	// 900 bytes per decoded transaction, and a dirty 4 KiB page of the tx
	// index per transaction once the index has more pages than the batch
	// has transactions. With batches of 100,000 a fresh node syncing a
	// million-account chain ended with 2.05 GB of anonymous memory, with
	// 20,000 1.40 GB, for one more fsync per 20,000 transactions
	// (docs/PERFORMANCE.md, "Sync with bounded memory").
	syncBatchTxs = 20000
	logEvery     = 2 * time.Second
)

// syncBatchBytes: see syncBatchTxs (a variable for tests).
var syncBatchBytes = 4 << 20

// syncRecord is how a peer served sync.
type syncRecord struct {
	served int       // sessions that brought blocks
	fails  int       // consecutive failures
	until  time.Time // left alone until then
	soft   bool      // the backoff is for serving nothing new: a hint lifts it
}

// syncHint is what a peer announced that we could not connect: the lowest
// height of those blocks, and when the last of them came.
type syncHint struct {
	height uint64
	at     time.Time
}

// dropHint forgets p's hint in hints if it came before candidates were
// read at read: one that came later (during the session) was not served
// by it.
func dropHint(hints map[peer.ID]syncHint, p peer.ID, read time.Time) {
	if h, ok := hints[p]; ok && !h.at.After(read) {
		delete(hints, p)
	}
}

// requestSync asks the sync loop to sync from p: p announced a block at
// height whose parent we lack.
func (n *Node) requestSync(p peer.ID, height uint64) {
	ours, _ := n.h.Head()
	n.mu.Lock()
	if r := n.syncRecs[p]; r != nil && r.soft && height > ours {
		// A block above our head is news; one below it (a shorter
		// branch) is not worth more than a session per backoff: a peer
		// could announce such blocks on made-up parents without end and
		// is never held to them (judgeOrphans).
		r.until = time.Time{}
	}
	if h, ok := n.hints[p]; ok {
		n.hints[p] = syncHint{height: min(h.height, height), at: time.Now()}
	} else if len(n.hints) < 64 {
		n.hints[p] = syncHint{height: height, at: time.Now()}
	}
	n.mu.Unlock()
	n.wakeSync()
}

func (n *Node) wakeSync() {
	select {
	case n.syncWake <- struct{}{}:
	default:
	}
}

// syncFailure kinds.
type failure int

const (
	failTimeout    failure = iota // no answer, a stall, a network error
	failNoNews                    // answered, but nothing new though it claims more
	failRule                      // broke a rule: penalised too
	failOurs                      // this node could not take the blocks: not the peer's fault
	failNoAncestor                // no common ancestor within reach
)

// syncFailed records a failed sync with p and leaves it alone for a while.
func (n *Node) syncFailed(c candidate, kind failure, err error) {
	p := c.id
	if n.ctx.Err() != nil {
		return
	}
	now := time.Now()
	n.mu.Lock()
	r := n.syncRecs[p]
	if r == nil {
		r = &syncRecord{}
		n.syncRecs[p] = r
	}
	var wait time.Duration
	r.soft = false
	switch kind {
	case failNoNews, failOurs:
		wait, r.soft = pollInterval, kind == failNoNews
	default:
		r.fails++
		wait = min(backoffMin<<min(r.fails-1, 16), backoffMax)
		if kind != failTimeout {
			wait = max(wait, backoffRule)
		}
	}
	r.until = now.Add(wait)
	dropHint(n.hints, p, c.read)
	n.mu.Unlock()
	if kind == failRule {
		n.offence(p, "sync", err)
	}
	n.log.Info("p2p: sync with peer failed", "peer", p.String(), "err", fmt.Sprint(err), "retry_in", wait.Round(time.Millisecond))
}

func (n *Node) syncServed(p peer.ID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.syncRecs[p]
	if r == nil {
		r = &syncRecord{}
		n.syncRecs[p] = r
	}
	r.served++
	r.fails, r.until, r.soft = 0, time.Time{}, false
}

// candidate is a peer to sync from, with the first height to ask it for.
type candidate struct {
	id     peer.ID
	from   uint64
	target uint64 // its claimed height
	served int
	fails  int
	asked  time.Time // when the session asked it first
	read   time.Time // when the hints it was made from were read
	// low is the height of a block it announced below our head on a
	// parent we lack (0: none), and head its head then.
	low  uint64
	head chain.Hash
}

// syncCandidates returns the peers worth syncing from, best first, and
// how long until a peer left to gossip (below) is worth asking again
// (0: none was).
//
// A peer at most gossipLead blocks ahead of us is most often one whose
// newest blocks gossip is still bringing: under load a status poll finds
// some peer a block ahead nearly every time, and a sync started then
// fetched that block a second time and went on chasing the forgers' new
// blocks for seconds, importing in batches what gossip brought anyway
// (docs/PERFORMANCE.md, "Syncs that chased gossip"). So such a peer is a
// candidate only once gossip has failed to bring, within gossipGrace, the
// head it had when we first found it ahead; when gossip brings it, the
// clock starts again on the peer's head then. It is the block that
// counts, not our height: our height also grows on a branch of our own
// (a healed split), and the peer's shorter branch may be the one fork
// choice prefers. A fork at our height and an announced block we cannot
// connect are candidates at once, as is a peer further ahead.
func (n *Node) syncCandidates() ([]candidate, time.Duration) {
	ourHeight, ourHead := n.h.Head()
	known, _ := n.h.(BlockKnower)
	// Which of the blocks gossip was given time to bring it brought,
	// asked unlocked (the handler reads its store).
	var brought map[peer.ID]bool
	if known != nil {
		waiting := map[peer.ID]chain.Hash{}
		n.mu.Lock()
		for id, ps := range n.peers {
			if !ps.aheadSince.IsZero() {
				waiting[id] = ps.aheadHead
			}
		}
		n.mu.Unlock()
		brought = make(map[peer.ID]bool, len(waiting))
		for id, h := range waiting {
			brought[id] = known.HasBlock(h)
		}
	}
	now := time.Now()
	var retry time.Duration
	n.mu.Lock()
	var out []candidate
	for id, ps := range n.peers {
		hint, hinted := n.hints[id]
		ahead := ps.height > ourHeight
		fork := ps.height == ourHeight && ps.head != ourHead
		if !ahead {
			ps.aheadHead, ps.aheadSince = chain.Hash{}, time.Time{}
		}
		if !ahead && !fork && !hinted {
			continue
		}
		if ahead && !hinted && ps.height-ourHeight <= gossipLead && known != nil {
			if ps.aheadSince.IsZero() || brought[id] {
				ps.aheadHead, ps.aheadSince = ps.head, now
			}
			if wait := gossipGrace - now.Sub(ps.aheadSince); wait > 0 {
				if retry == 0 || wait < retry {
					retry = wait
				}
				continue
			}
		}
		c := candidate{id: id, from: ourHeight + 1, target: ps.height, read: now}
		if fork {
			// Same height, another head: fetch the peer's head so fork
			// choice can settle it.
			c.from = ourHeight
		}
		if hinted && hint.height > 0 && hint.height < c.from {
			c.low, c.head = hint.height, ps.head // settled below, unlocked
		}
		if r := n.syncRecs[id]; r != nil {
			if now.Before(r.until) {
				continue
			}
			c.served, c.fails = r.served, r.fails
		}
		out = append(out, c)
	}
	for id := range n.hints {
		if _, ok := n.peers[id]; !ok {
			delete(n.hints, id)
		}
	}
	n.mu.Unlock()
	for i := range out {
		c := &out[i]
		if c.low == 0 || (known != nil && known.HasBlock(c.head)) {
			continue
		}
		// It announced a block below our head and its head is a block we
		// lack: its chain is another, shorter branch, which fork choice
		// v3 may prefer for its justified checkpoint. Fetch from that
		// block (stepping back to the common ancestor if need be):
		// asking from our height+1 fetches nothing, and the two halves of
		// a healed split would never see each other's branch while the
		// other is longer. Not below maxStepBack under our head: a peer
		// naming a low height (on a made-up parent) must not make us
		// fetch the whole chain, and no branch forking deeper can win
		// fork choice (the reorg limit).
		c.from = max(c.low, ourHeight-min(ourHeight-1, maxStepBack))
	}
	out = slices.DeleteFunc(out, func(c candidate) bool { return n.gater.isBanned(c.id) })
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	slices.SortStableFunc(out, func(a, b candidate) int {
		if (a.served > 0) != (b.served > 0) {
			if a.served > 0 {
				return -1
			}
			return 1
		}
		return a.fails - b.fails
	})
	return out, retry
}

// syncLoop runs one sync session at a time, and polls every peer's status
// so a higher head is noticed even when gossip was missed.
func (n *Node) syncLoop() {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	// again fires when a peer left to gossip is worth asking (syncCandidates).
	again := time.NewTimer(time.Hour)
	again.Stop()
	defer again.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.syncWake:
		case <-again.C:
		case <-t.C:
			n.pollPeers()
		}
		for n.ctx.Err() == nil {
			cands, retry := n.syncCandidates()
			if retry > 0 {
				again.Reset(retry)
			}
			if len(cands) == 0 {
				break
			}
			n.syncSession(cands)
		}
	}
}

// pollPeers refreshes the status of every connected peer; observe wakes
// the sync loop for those ahead of us.
func (n *Node) pollPeers() {
	var wg sync.WaitGroup
	for _, p := range n.host.Network().Peers() {
		if n.gater.isBanned(p) {
			continue
		}
		wg.Go(func() { n.handshake(n.ctx, p) })
	}
	wg.Wait()
}

// answer is one candidate's reply to the hedged first request.
type answer struct {
	c   candidate
	rs  *rangeStream
	err error
}

// syncSession asks the candidates for their first range, hedged, and
// syncs from the first that answers. Every candidate it gave up on is
// recorded as failed, so the loop does not pick it again at once.
func (n *Node) syncSession(cands []candidate) {
	ctx, cancel := context.WithCancel(n.ctx)
	answers := make(chan answer, maxHedge)
	asked := map[peer.ID]bool{}
	next, outstanding := 0, 0
	// launch asks the next candidate, looking again for candidates (a
	// peer that joined meanwhile) when the list is used up.
	launch := func() {
		if outstanding >= maxHedge {
			return
		}
		if next == len(cands) {
			more, _ := n.syncCandidates()
			cands = slices.DeleteFunc(more, func(c candidate) bool { return asked[c.id] })
			next = 0
		}
		if next == len(cands) {
			return
		}
		c := cands[next]
		next++
		asked[c.id] = true
		c.asked = time.Now()
		outstanding++
		go func() {
			rs, err := n.openRange(ctx, c.id, c.from, maxSyncRange)
			answers <- answer{c, rs, err}
		}()
	}
	launch()
	hedge := time.NewTimer(hedgeDelay)
	defer hedge.Stop()
	var win *answer
	for win == nil && outstanding > 0 {
		select {
		case a := <-answers:
			outstanding--
			if a.err != nil {
				n.syncFailed(a.c, classify(a.err), a.err) // its claims wait (judgeOrphans)
				launch()
				hedge.Reset(hedgeDelay)
				continue
			}
			win = &a
		case <-hedge.C:
			launch()
			hedge.Reset(hedgeDelay)
		}
	}
	if win != nil {
		win.rs.detach() // the winner's stream outlives ctx
	}
	cancel()
	// Hang up on the others as they come back (their contexts are done).
	if outstanding > 0 {
		n.spawn(func() {
			for range outstanding {
				if a := <-answers; a.rs != nil {
					a.rs.s.Reset()
				}
			}
		})
	}
	if win == nil {
		return
	}
	n.syncWith(win.c, win.rs)
}

// errStepBack: the first block of a range has an unknown parent, so we are
// on another fork than the peer below that height.
var errStepBack = errors.New("first block has an unknown parent")

// syncError is a failure of a sync with its kind.
type syncError struct {
	kind failure
	err  error
}

func (e *syncError) Error() string { return e.err.Error() }
func (e *syncError) Unwrap() error { return e.err }

func ruleBreak(format string, args ...any) error {
	return &syncError{failRule, fmt.Errorf(format, args...)}
}

// classify says what kind of failure err is: a syncError says so itself;
// anything else (timeouts, resets, refused streams) is a timeout.
func classify(err error) failure {
	var se *syncError
	if errors.As(err, &se) {
		return se.kind
	}
	return failTimeout
}

// syncWith pulls blocks from c.id, starting at c.from with the range
// already open in first, until it has no more, stepping back to find the
// common ancestor when needed.
func (n *Node) syncWith(c candidate, first *rangeStream) {
	p := c.id
	ourHeight, startHead := n.h.Head()
	base := c.from
	target := c.target
	from := base
	var back uint64
	start := time.Now()
	lastLog, lastCount := start, 0
	imported := 0
	n.log.Info("p2p: sync started", "peer", p.String(), "height", ourHeight, "target", target)
	if n.cfg.CatchUp != nil && target > ourHeight+catchUpBlocks {
		defer n.cfg.CatchUp()()
	}
	batcher, _ := n.h.(BatchHandler)
	var pending []*chain.Block
	pendingTxs, pendingBytes := 0, 0
	// take interprets the handler's answer for block b of a range, prev
	// the block the peer sent before it (first: b begins the range, where
	// an unknown parent means "step back").
	take := func(herr error, b, prev *chain.Block, first bool) error {
		height := b.Height
		switch {
		case herr == nil || errors.Is(herr, ErrIgnore):
			return nil
		case errors.Is(herr, ErrUnknownParent) && first:
			return errStepBack
		case IsReject(herr):
			return &syncError{failRule, fmt.Errorf("block %d: %w", height, herr)}
		case errors.Is(herr, ErrUnknownParent) && prev != nil && b.PrevHash == prev.Hash():
			// Its parent came just before it and the node did not store
			// it (a bound, a block kept until due, a failed write): ours.
			return &syncError{failOurs, fmt.Errorf("block %d: its parent, sent before it, was not kept: %w", height, herr)}
		case errors.Is(herr, ErrUnknownParent):
			return &syncError{failRule, fmt.Errorf("block %d does not follow the one before it: %w", height, herr)}
		}
		return &syncError{failOurs, fmt.Errorf("block %d not taken: %w", height, herr)}
	}
	var sent *chain.Block // the last block handed to the node
	// flush hands the pending blocks to the batch handler.
	flush := func(first bool) error {
		accepted, herr := batcher.HandleBlocks(pending)
		imported += accepted
		var err error
		if herr != nil {
			i := min(accepted, len(pending)-1)
			prev := sent
			if i > 0 {
				prev = pending[i-1]
			}
			err = take(herr, pending[i], prev, first && accepted == 0)
		}
		last := pending[len(pending)-1]
		sent = last
		target = max(target, last.Height)
		if now := time.Now(); err == nil && now.Sub(lastLog) >= logEvery {
			n.log.Info("p2p: syncing", "peer", p.String(), "height", last.Height, "target", target,
				"blocks_per_s", int(float64(imported-lastCount)/now.Sub(lastLog).Seconds()))
			lastLog, lastCount = now, imported
		}
		pending, pendingTxs, pendingBytes = pending[:0], 0, 0
		return err
	}
	for n.ctx.Err() == nil {
		got := 0
		pending, pendingTxs, pendingBytes = pending[:0], 0, 0
		each := func(b *chain.Block, size int) error {
			if b.Height != from+uint64(got) {
				return ruleBreak("peer sent height %d, want %d", b.Height, from+uint64(got))
			}
			got++
			if len(b.Transactions) > chain.MaxBlockTxsLimit {
				return ruleBreak("block %d holds %d transactions, more than any network allows", b.Height, len(b.Transactions))
			}
			if batcher != nil {
				// Bound what a peer can make us hold before validating it:
				// hand over the batch once it carries syncBatchTxs
				// transactions or syncBatchBytes.
				pending = append(pending, b)
				pendingTxs += len(b.Transactions) + 1
				pendingBytes += size
				if pendingTxs >= syncBatchTxs || pendingBytes >= syncBatchBytes {
					return flush(got == len(pending))
				}
				return nil
			}
			herr := n.h.HandleBlock(b)
			if herr == nil {
				imported++
			}
			prev := sent
			sent = b
			if err := take(herr, b, prev, got == 1); err != nil {
				return err
			}
			target = max(target, b.Height)
			if now := time.Now(); imported-lastCount >= logEveryBlocks || now.Sub(lastLog) >= logEvery {
				rate := float64(imported-lastCount) / now.Sub(lastLog).Seconds()
				n.log.Info("p2p: syncing", "peer", p.String(), "height", b.Height, "target", target,
					"blocks_per_s", int(rate))
				lastLog, lastCount = now, imported
			}
			return nil
		}
		var err error
		if first != nil {
			err = first.each(maxSyncRange, each)
			first = nil
		} else {
			err = n.fetchBlocks(p, from, maxSyncRange, each)
		}
		if err == nil && len(pending) > 0 {
			err = flush(got == len(pending))
		}
		if errors.Is(err, errStepBack) {
			if from == 0 {
				n.syncFailed(c, failNoAncestor, errors.New("no common ancestor"))
				return
			}
			if back == 0 {
				back = 1
			} else {
				back *= 2
			}
			if back > maxStepBack || back >= base {
				from = 0
			} else {
				from = base - back
			}
			n.log.Info("p2p: sync: looking for the common ancestor", "peer", p.String(), "from", from)
			continue
		}
		if err != nil {
			if h, _ := n.h.Head(); h > ourHeight {
				n.syncServed(p) // it did serve something before it failed
			}
			n.syncFailed(c, classify(err), err)
			return
		}
		if got == 0 {
			break
		}
		from += uint64(got)
	}
	if n.ctx.Err() != nil {
		return
	}
	// The session ran to the peer's head: the peer's blocks on unknown
	// parents from before it are settled now.
	// Its blocks above our height must connect now. Those at or below
	// it are not judged even when the session began lower: sync serves
	// the peer's main chain, and an honest peer relays side blocks too.
	n.judgeOrphans(p, c.asked, ourHeight)
	height, head := n.h.Head()
	if head != startHead {
		n.syncServed(p)
	} else {
		// Nothing that moved our head (it claimed more, or served blocks
		// fork choice does not take): do not ask it again before the
		// next poll, or a peer could keep the sync loop spinning.
		n.syncFailed(c, failNoNews, fmt.Errorf("claims height %d but served nothing that moves our head", c.target))
	}
	n.mu.Lock()
	dropHint(n.hints, p, c.read)
	n.mu.Unlock()
	elapsed := time.Since(start)
	n.log.Info("p2p: sync finished", "peer", p.String(), "height", height, "head", head.String(),
		"imported", imported, "elapsed", elapsed.Round(time.Millisecond),
		"blocks_per_s", int(float64(imported)/elapsed.Seconds()))
}

// rangeStream is an open range request whose answer has begun.
type rangeStream struct {
	s        network.Stream
	r        *bufio.Reader
	size     uint64 // length of the first block (0: the range is empty)
	deadline time.Time
	detach   func() bool
	buf      []byte
}

// openRange requests [from, from+limit) from p and waits for the start of
// the answer (syncFirstByteTimeout). Cancelling ctx before it returns, or
// before detach is called on the result, resets the stream.
func (n *Node) openRange(ctx context.Context, p peer.ID, from uint64, limit int) (*rangeStream, error) {
	octx, cancel := context.WithTimeout(ctx, syncOpenTimeout)
	s, err := n.host.NewStream(network.WithNoDial(octx, "sync from a connected peer"), p, SyncProtocol)
	cancel()
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	fail := func(err error) (*rangeStream, error) {
		stop()
		s.Reset()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	req := make([]byte, 0, syncRequestLen)
	req = binary.BigEndian.AppendUint64(req, from)
	req = binary.BigEndian.AppendUint32(req, uint32(limit))
	s.SetWriteDeadline(time.Now().Add(syncOpenTimeout))
	if _, err := s.Write(req); err != nil {
		return fail(err)
	}
	s.CloseWrite()
	rs := &rangeStream{s: s, r: bufio.NewReaderSize(s, 64<<10), detach: stop,
		deadline: time.Now().Add(syncRequestTimeout)}
	s.SetReadDeadline(time.Now().Add(syncFirstByteTimeout))
	if rs.size, err = binary.ReadUvarint(rs.r); err != nil {
		return fail(fmt.Errorf("no answer to a range request: %w", err))
	}
	return rs, nil
}

// readDeadline is the deadline of the next read.
func (rs *rangeStream) readDeadline() time.Time {
	if d := time.Now().Add(syncReadTimeout); d.Before(rs.deadline) {
		return d
	}
	return rs.deadline
}

// each reads the blocks of the range and calls fn on each as it arrives,
// with its encoded size. An error from fn ends the request and is
// returned. The stream is closed.
func (rs *rangeStream) each(limit int, fn func(b *chain.Block, size int) error) error {
	s := rs.s
	ok := false
	defer func() {
		if ok {
			s.Close()
		} else {
			s.Reset()
		}
	}()
	size := rs.size
	for count := 0; ; count++ {
		if count > 0 {
			// However slowly a peer drips blocks, one request ends in time,
			// so one peer cannot hold the (single) sync loop.
			s.SetReadDeadline(rs.readDeadline())
			var err error
			if size, err = binary.ReadUvarint(rs.r); err != nil {
				return fmt.Errorf("read block length: %w", err)
			}
		}
		if size == 0 {
			ok = true
			return nil
		}
		if size > maxMessageSize {
			return ruleBreak("block of %d bytes (limit %d)", size, maxMessageSize)
		}
		if count >= limit {
			return ruleBreak("peer sent more than %d blocks", limit)
		}
		if cap(rs.buf) < int(size) {
			rs.buf = make([]byte, size)
		}
		buf := rs.buf[:size]
		s.SetReadDeadline(rs.readDeadline())
		if _, err := io.ReadFull(rs.r, buf); err != nil {
			return fmt.Errorf("read block: %w", err)
		}
		b, err := chain.DecodeBlock(buf)
		if err != nil {
			return ruleBreak("undecodable block: %v", err)
		}
		if err := fn(b, int(size)); err != nil {
			return err
		}
	}
}

// fetchBlocks requests [from, from+limit) from p and calls fn on each block
// as it arrives. An error from fn ends the request and is returned.
func (n *Node) fetchBlocks(p peer.ID, from uint64, limit int, fn func(b *chain.Block, size int) error) error {
	rs, err := n.openRange(n.ctx, p, from, limit)
	if err != nil {
		return err
	}
	rs.detach()
	return rs.each(limit, fn)
}

// serveSync answers a range request with our main-chain blocks.
func (n *Node) serveSync(s network.Stream) {
	select {
	case n.serveSem <- struct{}{}:
		defer func() { <-n.serveSem }()
	default:
		s.Reset()
		return
	}
	s.SetReadDeadline(time.Now().Add(statusTimeout))
	req := make([]byte, syncRequestLen)
	if _, err := io.ReadFull(s, req); err != nil {
		s.Reset()
		return
	}
	from := binary.BigEndian.Uint64(req)
	limit := int(binary.BigEndian.Uint32(req[8:]))
	limit = min(max(limit, 0), maxSyncRange)
	// Blocks are read a few at a time and the answer stops after
	// syncServeBytes: a range of big blocks is never held whole, and the
	// asker continues from where the answer ended.
	w := bufio.NewWriterSize(s, 64<<10)
	var lenBuf [binary.MaxVarintLen64]byte
	sent := 0
	for next, left := from, limit; left > 0 && sent < syncServeBytes; {
		n2 := min(left, syncServeChunk)
		blocks, err := n.h.Blocks(next, n2)
		if err != nil {
			n.log.Debug("p2p: serve sync", "from", next, "err", err)
			s.Reset()
			return
		}
		for _, b := range blocks {
			enc := chain.EncodeBlock(b)
			s.SetWriteDeadline(time.Now().Add(syncReadTimeout))
			k := binary.PutUvarint(lenBuf[:], uint64(len(enc)))
			if _, err := w.Write(lenBuf[:k]); err != nil {
				s.Reset()
				return
			}
			if _, err := w.Write(enc); err != nil {
				s.Reset()
				return
			}
			sent += k + len(enc)
		}
		if len(blocks) < n2 {
			break // the head
		}
		next += uint64(n2)
		left -= n2
	}
	s.SetWriteDeadline(time.Now().Add(syncReadTimeout))
	w.WriteByte(0)
	if err := w.Flush(); err != nil {
		s.Reset()
		return
	}
	s.Close()
}
