package p2p

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"

	"github.com/poslab/posd/chain"
)

// Gap filling. Gossip may lose a transaction message (a peer's budget, a
// full queue, a validator taking messages out of order), and a sender's
// later nonces then wait at every peer that missed it: gapped, never
// executable, until the origin gossips its lingering transactions again
// (every two slots, at most 15 s, and only if it has peers). A node that takes a message in which a sender
// arrives with a gap asks the peer that sent it for that sender's pooled
// run from the first missing nonce (TxFillProtocol): the peer had the
// later nonces, so it holds the missing ones pending.
//
// Bounded everywhere: one request in flight per sender and peer, at most
// fillPerPeer queued or in flight per peer, fillWorkers requests at a
// time from a queue of fillQueue, answers of at most fillAnswerBytes and
// fillMaxTxs transactions; served at most fillRate a second and
// fillServePerPeer at a time per peer, fillServers at a time in all, at
// most fillServeBytes a second in all.
//
// A peer decides what we ask it, so it must not be able to stall us: a
// gap is only believed of a transaction whose signature verified (the
// handler's duty), a peer holds at most fillPerPeer of the queue's
// places, a request times out after fillTimeout and a peer whose request
// failed is not asked again for fillBackoff, and a sender in flight to
// one peer may still be asked of another.

// TxFillProtocol asks a peer for a sender's pooled transactions.
const TxFillProtocol = protocol.ID("/posd/txfill/1.0.0")

// fillReadTimeout bounds the reading of a request (a few dozen bytes). A
// variable for tests.
var fillReadTimeout = time.Second

const (
	fillMaxTxs = 1024 // transactions per answer
	// fillAnswerBytes bounds an answer's encoded transactions: the batch
	// framing adds up to binary.MaxVarintLen32 bytes to each, and a batch
	// is at most maxBatchBytes, so a run of this many bytes is sent whole.
	fillAnswerBytes = maxBatchBytes - fillMaxTxs*binary.MaxVarintLen32
	fillQueue       = 256 // requests waiting for a worker
	fillWorkers     = 2
	fillServers     = 4
	// fillServePerPeer is how many of one peer's requests are served at
	// once: as many as an honest asker runs (its fillWorkers).
	fillServePerPeer = fillWorkers
	// fillServeBytes bounds the answers' bytes a second, all peers
	// together: serving a run is not to crowd out gossip and blocks.
	fillServeBytes = 4 << 20
	fillTimeout    = 2 * time.Second
	fillPerPeer    = 4               // requests to one peer queued or in flight
	fillBackoff    = 2 * time.Second // a peer whose request failed is not asked for this long
	fillRate       = 20              // requests served per second per peer
	fillSenders    = 4096
	fillRequest    = 64 + 2*binary.MaxVarintLen64 + 1 // most bytes of a request
	fillCooldown   = 200 * time.Millisecond           // between two requests for one sender
)

// TxGap says that this node lacks sender From's nonces from Next on,
// while it was sent later ones.
type TxGap struct {
	From chain.Address
	Next uint64
}

// TxFiller is a Handler that takes part in gap filling.
type TxFiller interface {
	// HandleTxsGaps is HandleTxs that also says which senders of txs
	// arrived with a gap before them. gossiped says txs are one gossip
	// message, which may go on as it came (HandleTxs); false: a gap fill
	// answer, of which only what became ready is gossiped.
	HandleTxsGaps(txs []chain.Transaction, gossiped bool) (relay []chain.Transaction, gaps []TxGap, err error)
	// PooledRun returns from's pooled executable transactions from
	// nonce on, in nonce order: at most limit, and past the first at
	// most maxBytes encoded.
	PooledRun(from chain.Address, nonce uint64, limit, maxBytes int) []chain.Transaction
}

type fillReq struct {
	peer peer.ID
	gap  TxGap
}

// fillKey is one sender asked of one peer: a peer that stalls a request
// for a sender does not keep other peers from being asked for it.
type fillKey struct {
	from chain.Address
	peer peer.ID
}

// fillPeer is what the asking side holds for one peer.
type fillPeer struct {
	pending int       // requests queued or in flight
	quiet   time.Time // a request failed: not asked before then
}

// txFill is the asking side's state.
type txFill struct {
	queue chan fillReq

	mu    sync.Mutex
	asked map[fillKey]time.Time // when the request settled; zero: queued or in flight
	peers map[peer.ID]*fillPeer
	sem   chan struct{} // serving slots
	out   *rate.Limiter // answers' bytes a second
}

func newTxFill() *txFill {
	return &txFill{
		queue: make(chan fillReq, fillQueue),
		asked: map[fillKey]time.Time{},
		peers: map[peer.ID]*fillPeer{},
		sem:   make(chan struct{}, fillServers),
		out:   rate.NewLimiter(fillServeBytes, maxTxMessageSize),
	}
}

// startTxFill serves TxFillProtocol and starts the askers, if the
// handler fills gaps (startGossip made n.fill).
func (n *Node) startTxFill() {
	if n.fill == nil {
		return
	}
	n.host.SetStreamHandler(TxFillProtocol, n.tracked(n.serveTxFill))
	for range fillWorkers {
		n.spawn(n.fillLoop)
	}
}

// handleTxs hands a message's transactions to the handler and asks from
// for what they showed missing.
func (n *Node) handleTxs(from peer.ID, txs []chain.Transaction) ([]chain.Transaction, error) {
	f, ok := n.h.(TxFiller)
	if !ok || n.fill == nil {
		return n.h.HandleTxs(txs)
	}
	relay, gaps, err := f.HandleTxsGaps(txs, true)
	if err == nil {
		for _, g := range gaps {
			n.askFill(from, g)
		}
	}
	return relay, err
}

// askFill queues a request to p for gap g, if ask lets it. Not logged
// when not: one message may show thousands of gaps.
func (n *Node) askFill(p peer.ID, g TxGap) {
	n.fill.ask(p, g, time.Now())
}

// ask queues a request to p for gap g, unless one for the sender is
// queued or in flight to p or was made less than fillCooldown ago, p has
// fillPerPeer requests pending or failed one less than fillBackoff ago,
// or the queue is full (a later message of the sender asks again; the
// rebroadcast remains). It reports whether it queued one.
func (f *txFill) ask(p peer.ID, g TxGap, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp := f.peers[p]
	if fp != nil && (fp.pending >= fillPerPeer || now.Before(fp.quiet)) {
		return false
	}
	key := fillKey{g.From, p}
	at, known := f.asked[key]
	if known && (at.IsZero() || now.Sub(at) < fillCooldown) {
		return false
	}
	if !known && len(f.asked) >= fillSenders {
		for k, t := range f.asked { // forget the settled ones
			if !t.IsZero() && now.Sub(t) >= fillCooldown {
				delete(f.asked, k)
			}
		}
		if len(f.asked) >= fillSenders {
			return false
		}
	}
	if fp == nil {
		if len(f.peers) >= fillSenders {
			for q, x := range f.peers { // forget the idle ones
				if x.pending == 0 && !now.Before(x.quiet) {
					delete(f.peers, q)
				}
			}
			if len(f.peers) >= fillSenders {
				return false
			}
		}
		fp = &fillPeer{}
		f.peers[p] = fp
	}
	select {
	case f.queue <- fillReq{p, g}:
		f.asked[key] = time.Time{}
		fp.pending++
		return true
	default:
		return false
	}
}

// settle records that r is done; a failed request quiets its peer for
// fillBackoff. With more, the answer filled part of the gap: the sender
// may be asked of r.peer again at once.
func (f *txFill) settle(r fillReq, failed, more bool, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := fillKey{r.gap.From, r.peer}
	if more {
		delete(f.asked, key)
	} else {
		f.asked[key] = now // asked again after fillCooldown
	}
	fp := f.peers[r.peer]
	if fp == nil {
		return
	}
	fp.pending--
	if failed {
		fp.quiet = now.Add(fillBackoff)
	}
	if fp.pending <= 0 && !now.Before(fp.quiet) {
		delete(f.peers, r.peer)
	}
}

func (n *Node) fillLoop() {
	for {
		var r fillReq
		select {
		case <-n.ctx.Done():
			return
		case r = <-n.fill.queue:
		}
		txs, err := n.requestFill(r)
		if err != nil {
			n.fill.settle(r, true, false, time.Now())
			if n.ctx.Err() == nil {
				n.log.Debug("p2p: gap fill failed", "peer", r.peer, "sender", r.gap.From, "from_nonce", r.gap.Next, "err", err)
			}
			continue
		}
		if len(txs) == 0 {
			n.fill.settle(r, false, false, time.Now())
			continue
		}
		ready, gaps, err := n.handleFill(r.peer, txs)
		if errors.Is(err, errFillDropped) {
			n.fill.settle(r, false, false, time.Now())
			continue
		}
		if IsReject(err) {
			n.fill.settle(r, true, false, time.Now())
			n.offence(r.peer, "gap fill", err)
			continue
		}
		// What the answer made ready is gossiped, as a partial relay is
		// (validateTxs): the message that showed the gap was not
		// forwarded, so the peers past this node learn of the run only
		// so.
		n.tryPublishTxs(ready)
		more := false
		for _, g := range gaps {
			// The answer filled part of the gap (it was cut at
			// fillMaxTxs or fillAnswerBytes): ask for the rest now.
			more = more || (g.From == r.gap.From && g.Next > r.gap.Next)
		}
		n.fill.settle(r, false, more, time.Now())
		for _, g := range gaps {
			n.askFill(r.peer, g)
		}
	}
}

// handleFill hands a fill answer from p to the handler under the bounds
// of a tx message: p's budget of transactions (the answer was its to
// send) and the validators' slots. errFillDropped: not handled (over the
// budget, shutting down).
func (n *Node) handleFill(p peer.ID, txs []chain.Transaction) ([]chain.Transaction, []TxGap, error) {
	if !n.enter() {
		return nil, nil, errFillDropped
	}
	defer n.leave()
	if !n.book.admitTxs(p, len(txs), time.Now()) {
		n.log.Debug("p2p: gap fill answer over the peer's budget, dropped", "peer", p, "txs", len(txs))
		return nil, nil, errFillDropped
	}
	defer n.book.doneTxs(p)
	select {
	case n.txSem <- struct{}{}:
		defer func() { <-n.txSem }()
	case <-n.ctx.Done():
		return nil, nil, errFillDropped
	}
	return n.h.(TxFiller).HandleTxsGaps(txs, false)
}

var errFillDropped = errors.New("gap fill answer not handled")

// requestFill asks r.peer for r.gap and returns the transactions it sent.
func (n *Node) requestFill(r fillReq) ([]chain.Transaction, error) {
	ctx, cancel := context.WithTimeout(n.ctx, fillTimeout)
	defer cancel()
	s, err := n.host.NewStream(network.WithNoDial(ctx, "gap fill from a connected peer"), r.peer, TxFillProtocol)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(fillTimeout))
	req := binary.AppendUvarint(nil, uint64(len(r.gap.From)))
	req = append(req, r.gap.From...)
	req = binary.AppendUvarint(req, r.gap.Next)
	if _, err := s.Write(req); err != nil {
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(s, maxTxMessageSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, nil // nothing pooled from that nonce
	}
	if len(data) > maxTxMessageSize {
		n.offence(r.peer, "gap fill", fmt.Errorf("answer over %d bytes", maxTxMessageSize))
		return nil, errors.New("answer too large")
	}
	ptrs, err := decodeTxBatch(data)
	if err == nil && len(ptrs) > fillMaxTxs {
		err = fmt.Errorf("%d transactions (limit %d)", len(ptrs), fillMaxTxs)
	}
	if err != nil {
		n.offence(r.peer, "gap fill", err)
		return nil, err
	}
	txs := make([]chain.Transaction, len(ptrs))
	for i, tx := range ptrs {
		if tx.From != r.gap.From || tx.Nonce < r.gap.Next {
			err := fmt.Errorf("asked for %s from nonce %d, got %s nonce %d", r.gap.From, r.gap.Next, tx.From, tx.Nonce)
			n.offence(r.peer, "gap fill", err)
			return nil, err
		}
		txs[i] = *tx
	}
	return txs, nil
}

// serveTxFill answers a request with the pooled run it asks for: an
// empty answer when there is none, a reset stream when over the peer's
// rate or turns, too many are served at once, or the answers' bytes are
// spent. The request is read before a serving slot is taken, under
// fillReadTimeout: a peer that writes slowly holds its own turns only.
func (n *Node) serveTxFill(s network.Stream) {
	defer s.Close()
	p := s.Conn().RemotePeer()
	f := n.fill
	if !n.book.admitFillServe(p, time.Now()) {
		_ = s.Reset()
		return
	}
	defer n.book.doneFillServe(p)
	_ = s.SetReadDeadline(time.Now().Add(fillReadTimeout))
	data, err := io.ReadAll(io.LimitReader(s, fillRequest+1))
	if err != nil {
		_ = s.Reset()
		return
	}
	from, nonce, err := decodeFillRequest(data)
	if err != nil {
		n.offence(p, "gap fill request", err)
		_ = s.Reset()
		return
	}
	select {
	case f.sem <- struct{}{}:
		defer func() { <-f.sem }()
	default:
		_ = s.Reset()
		return
	}
	txs := n.h.(TxFiller).PooledRun(from, nonce, fillMaxTxs, fillAnswerBytes)
	if len(txs) == 0 {
		return
	}
	out, _ := encodeTxBatch(txs)
	// At most half the asker's timeout in the queue for bytes, the rest
	// left for the answer to travel.
	ctx, cancel := context.WithTimeout(n.ctx, fillTimeout/2)
	defer cancel()
	if err := f.out.WaitN(ctx, len(out)); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.SetWriteDeadline(time.Now().Add(fillTimeout))
	_, _ = s.Write(out)
}

func decodeFillRequest(data []byte) (chain.Address, uint64, error) {
	if len(data) > fillRequest {
		return "", 0, fmt.Errorf("request over %d bytes", fillRequest)
	}
	size, k := chain.Uvarint(data)
	if k <= 0 || size == 0 || size > 64 || size > uint64(len(data)-k) {
		return "", 0, errors.New("bad address length")
	}
	from := chain.Address(data[k : k+int(size)])
	data = data[k+int(size):]
	nonce, k := chain.Uvarint(data)
	if k <= 0 || k != len(data) {
		return "", 0, errors.New("bad nonce")
	}
	return from, nonce, nil
}

// admitFillServe spends p's budget for one gap fill request served and
// takes one of its turns; false: over its rate or turns, refuse it. A
// true answer must be followed by doneFillServe.
func (b *peerBook) admitFillServe(p peer.ID, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.account(p)
	if a.fillServe == nil {
		a.fillServe = rate.NewLimiter(fillRate, 2*fillRate)
	}
	if a.fillServing >= fillServePerPeer || !a.fillServe.AllowN(now, 1) {
		return false
	}
	a.fillServing++
	return true
}

func (b *peerBook) doneFillServe(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a := b.peers[p]; a != nil && a.fillServing > 0 {
		a.fillServing--
	}
}
