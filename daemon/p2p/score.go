package p2p

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/poslab/posd/chain"
)

// How a Handler's answer becomes a verdict on the sender.
//
// A message is rejected (not forwarded, and held against the sender) only
// when the Handler says it broke a rule by wrapping ErrReject (see Reject):
// a malformed encoding, a stateless transaction rule, a bad signature, a
// block that breaks a consensus rule. Anything else a Handler returns is
// ignored (not forwarded, not held against the sender): what depends on
// this node's own view (already known, a spent nonce, funds this node does
// not see, a parent it lacks, a timestamp ahead of its clock) and, above
// all, this node's own faults (a disk error, a halted chain). A peer must
// never lose standing for our state. In gossipsub terms: ErrReject →
// ValidationReject (counts in the peer score), the rest → ValidationIgnore.

// ErrReject marks a message that broke a rule: the sender is penalised.
var ErrReject = errors.New("breaks a rule")

// Reject wraps err (the rule the message broke) into a rejection.
func Reject(err error) error {
	if err == nil {
		err = errors.New("rejected")
	}
	return fmt.Errorf("%w: %w", ErrReject, err)
}

// IsReject reports whether err says the message broke a rule.
func IsReject(err error) bool { return errors.Is(err, ErrReject) }

// Per-peer budgets (defaults of Config's zero fields).
const (
	DefaultTxMsgRate    = 50     // tx messages per second per peer
	DefaultTxRate       = 50_000 // transactions per second per peer
	DefaultBlockMsgRate = 20     // block messages per second per peer
	// maxTxInflight bounds how many of a peer's tx messages wait for
	// validation at once (of maxTxPending), so one peer cannot take every
	// turn. A full outbox leaves a node as some 32 messages at once
	// (txout.go): with 16 (until 2026-12-07) half of such a burst was
	// dropped, and its senders' later nonces arrived behind gaps.
	maxTxInflight = 32
	// penaltyHalfLife: an offence weighs half as much after it.
	penaltyHalfLife = time.Minute
	// banPenalty: a peer whose decayed offences reach it is disconnected
	// and refused for banDuration.
	banPenalty  = 20
	banDuration = 10 * time.Minute
	// appScoreWeight turns offences into gossipsub's application score:
	// 10 offences cross the gossip threshold (-100).
	appScoreWeight = 10
)

// peerBook keeps what this node holds against each peer: gossip budgets,
// tx messages in flight, and decaying offences.
type peerBook struct {
	txMsgRate, txRate, blockMsgRate float64
	voteMsgRate, voteRate           float64 // zero: the defaults (votes.go)

	mu    sync.Mutex
	peers map[peer.ID]*peerAccount
}

type peerAccount struct {
	txMsgs, txs, blockMsgs *rate.Limiter
	voteMsgs, votes        *rate.Limiter // made on the first vote message (votes.go)
	inflight               int
	penalty                float64
	penaltyAt              time.Time
	orphans                []orphanClaim // oldest first, at most maxOrphanClaims

	// Gap fill requests served to the peer (txfill.go): its rate (made
	// on first use) and how many are being served.
	fillServe   *rate.Limiter
	fillServing int
}

// Blocks on unknown parents. A peer that gossips a block whose parent we
// lack is asked for it by sync; an honest peer serves the parent (it built
// on it), so the claim is backed. One that cannot (sync from it fails, or
// brings no such parent) sent a block it could not back: each such block
// counts as an offence, so a flood of blocks on random parents (which
// costs the node a decode and a lookup each, no signature check) gets the
// sender disconnected after banPenalty of them. Claims are judged only
// against a sync session that began after they came, so a block that
// arrives while a sync is under way is not blamed on that sync; and only
// when that session ran to the peer's head without error. A session that
// timed out, was reset (a busy peer resets a range request it has no
// slot for), broke off, or was a hedged request another peer won proves
// nothing: the claims wait for a session that completes, or are forgotten
// past maxOrphanClaims. A claim on a block at or below our height when the
// session began is dropped unjudged: sync asks from our height on, so it
// could not have brought that parent (an honest peer's side block).

// maxOrphanClaims bounds the claims remembered per peer; beyond it the
// oldest is forgotten (unjudged: a peer we sync from elsewhere is not
// blamed for our being busy).
const maxOrphanClaims = 16

// orphanClaim is a block p sent whose parent we lacked: the parent, the
// block's height, and when.
type orphanClaim struct {
	parent chain.Hash
	height uint64
	at     time.Time
}

func newPeerBook(cfg Config) *peerBook {
	b := &peerBook{txMsgRate: cfg.TxMsgRate, txRate: cfg.TxRate, blockMsgRate: cfg.BlockMsgRate,
		voteMsgRate: cfg.VoteMsgRate, voteRate: cfg.VoteRate, peers: map[peer.ID]*peerAccount{}}
	if b.txMsgRate <= 0 {
		b.txMsgRate = DefaultTxMsgRate
	}
	if b.txRate <= 0 {
		b.txRate = DefaultTxRate
	}
	if b.blockMsgRate <= 0 {
		b.blockMsgRate = DefaultBlockMsgRate
	}
	return b
}

// account returns p's account, made on first use. b.mu is held.
func (b *peerBook) account(p peer.ID) *peerAccount {
	a := b.peers[p]
	if a == nil {
		a = &peerAccount{
			txMsgs: rate.NewLimiter(rate.Limit(b.txMsgRate), int(math.Ceil(2*b.txMsgRate))),
			// A burst of at least one full batch.
			txs:       rate.NewLimiter(rate.Limit(b.txRate), max(int(2*b.txRate), maxBatchTxs)),
			blockMsgs: rate.NewLimiter(rate.Limit(b.blockMsgRate), int(math.Ceil(2*b.blockMsgRate))),
		}
		b.peers[p] = a
	}
	return a
}

// admitTxs spends p's budget for one message of count transactions and
// takes an in-flight slot; false: over budget, drop the message. A true
// answer must be followed by doneTxs.
func (b *peerBook) admitTxs(p peer.ID, count int, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.account(p)
	if a.inflight >= maxTxInflight || !a.txMsgs.AllowN(now, 1) {
		return false
	}
	if !a.txs.AllowN(now, count) {
		return false
	}
	a.inflight++
	return true
}

func (b *peerBook) doneTxs(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a := b.peers[p]; a != nil && a.inflight > 0 {
		a.inflight--
	}
}

// admitBlock spends p's budget for one block message.
func (b *peerBook) admitBlock(p peer.ID, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.account(p).blockMsgs.AllowN(now, 1)
}

// claimOrphan remembers that p sent a block of height on the unknown
// parent.
func (b *peerBook) claimOrphan(p peer.ID, parent chain.Hash, height uint64, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.account(p)
	if len(a.orphans) >= maxOrphanClaims {
		a.orphans = append(a.orphans[:0], a.orphans[1:]...)
	}
	a.orphans = append(a.orphans, orphanClaim{parent, height, now})
}

// takeOrphans removes p's claims made before since and returns the
// parents of those on blocks above height (the others are dropped).
func (b *peerBook) takeOrphans(p peer.ID, since time.Time, height uint64) []chain.Hash {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.peers[p]
	if a == nil {
		return nil
	}
	var out []chain.Hash
	kept := a.orphans[:0]
	for _, c := range a.orphans {
		if c.at.Before(since) {
			if c.height > height {
				out = append(out, c.parent)
			}
		} else {
			kept = append(kept, c)
		}
	}
	a.orphans = kept
	return out
}

// judgeOrphans settles p's orphan claims made before a sync session with
// it began (asked), once the session ran to p's head without error: a
// parent still unknown was not backed, and counts as an offence. Claims on
// blocks at or below height (ours when the session began) are dropped.
func (n *Node) judgeOrphans(p peer.ID, asked time.Time, height uint64) {
	known, ok := n.h.(BlockKnower)
	if !ok || n.ctx.Err() != nil {
		return
	}
	for _, parent := range n.book.takeOrphans(p, asked, height) {
		if !known.HasBlock(parent) {
			n.offence(p, "block on an unknown parent", fmt.Errorf("sync from the peer did not bring parent %s", parent))
		}
	}
}

// penalize adds weight to p's offences and returns the decayed total.
func (b *peerBook) penalize(p peer.ID, weight float64, now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.account(p)
	a.penalty = decay(a.penalty, now.Sub(a.penaltyAt)) + weight
	a.penaltyAt = now
	return a.penalty
}

// penaltyOf returns p's decayed offences.
func (b *peerBook) penaltyOf(p peer.ID, now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.peers[p]
	if a == nil {
		return 0
	}
	return decay(a.penalty, now.Sub(a.penaltyAt))
}

// forget drops a disconnected peer's budgets, but keeps its offences
// (a reconnect must not wipe them) while they weigh anything.
func (b *peerBook) forget(p peer.ID, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a := b.peers[p]; a != nil && decay(a.penalty, now.Sub(a.penaltyAt)) < 0.5 {
		delete(b.peers, p)
	}
}

func decay(v float64, elapsed time.Duration) float64 {
	if v == 0 || elapsed <= 0 {
		return v
	}
	return v * math.Exp2(-elapsed.Seconds()/penaltyHalfLife.Seconds())
}

// offence records that p sent something that broke a rule (what says
// what), and disconnects and bans p for a while once its offences pile up.
func (n *Node) offence(p peer.ID, what string, err error) {
	total := n.book.penalize(p, 1, time.Now())
	n.log.Debug("p2p: peer broke a rule", "peer", p.String(), "what", what, "err", fmt.Sprint(err), "penalty", total)
	if total < banPenalty {
		return
	}
	if n.gater.banFor(p, time.Now().Add(banDuration)) {
		n.log.Warn("p2p: disconnecting a peer that keeps breaking rules", "peer", p.String(), "last", what, "err", fmt.Sprint(err), "for", banDuration)
	}
	n.mu.Lock()
	delete(n.peers, p)
	n.mu.Unlock()
	n.host.Network().ClosePeer(p)
}
