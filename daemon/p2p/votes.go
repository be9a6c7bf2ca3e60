package p2p

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/poslab/posd/chain"
)

// Finality votes (DESIGN "v3 rules") travel on a topic of their own, on the
// block router: they are small, few (one per staker per head) and late
// votes delay finality, so they must not wait behind transaction batches.
// A message is a batch of votes:
//
//	uvarint count (1..maxVoteBatch), then count × chain.EncodedVoteLen
//
// The validator decodes every vote, checks it statelessly and batch-checks
// every signature (chain.SigVerifier.VerifyVotes); one bad vote rejects the
// whole message (not forwarded, held against the sender), so garbage never
// travels further. Then the votes go to the handler, whose answer decides
// whether the message is forwarded. A node's own votes leave through an
// outbox that coalesces them into batches. Sync is unchanged: the votes
// that count travel inside blocks. A handler that does not implement
// VoteHandler leaves the topic unjoined.

// VoteTopic names the vote gossip topic of a chain.
func VoteTopic(chainID string) string { return "/posd/" + chainID + "/votes/1" }

const (
	// maxVoteBatch bounds the votes of one message (55 KiB).
	maxVoteBatch = 256
	// maxVoteMsg is the largest well-formed vote message.
	maxVoteMsg = 10 + maxVoteBatch*chain.EncodedVoteLen
	// voteValidators: vote messages validated at once; beyond, gossipsub
	// drops them (throttled: no penalty), and a throttled message is lost
	// to this node: gossipsub marked it seen before it ran the validator,
	// so the copies other peers forward are duplicates. Every voting node
	// sends a message per head, all at about the same time, so the limit
	// must stay above a head's messages: at 4, on 20 nodes under load
	// (signature checks waiting for the process-wide verification slots
	// they share with transactions), most votes never reached most nodes
	// and few blocks justified their parents (docs/NETWORK.md, "Phases of
	// finality"). The CPU stays bounded by those slots, the memory by
	// voteValidators × maxVoteMsg (3.5 MiB).
	voteValidators = 64
	// voteOutboxVotes bounds the local votes waiting to be gossiped: a
	// node signs one per key per head, so this is far beyond need; what
	// does not fit is dropped and counted.
	voteOutboxVotes = 4096
	// voteFlushGap is the pause between two flushes of the vote outbox:
	// votes of several keys on one head share a message, and a vote
	// waits at most this long.
	voteFlushGap = 20 * time.Millisecond
)

// Per-peer vote budgets (defaults of Config's zero fields). An honest
// peer forwards about one message per voting node per head.
const (
	DefaultVoteMsgRate = 50   // vote messages per second per peer
	DefaultVoteRate    = 5000 // votes per second per peer
)

// VoteHandler is a Handler that takes finality votes. HandleVotes gets
// the votes of one message, each well formed and validly signed; it
// returns nil when some of them were new here (the message is forwarded),
// ErrIgnore (or any error not wrapping ErrReject) when none was (dropped,
// nobody penalised), and a Reject for votes that break a rule whatever
// this node's view (the sender penalised).
type VoteHandler interface {
	HandleVotes(votes []chain.Vote) error
}

// VoteStats counts vote gossip by outcome.
type VoteStats struct {
	MsgsAccepted   uint64 // forwarded
	MsgsIgnored    uint64 // nothing new, or the handler's own failure
	MsgsRejected   uint64 // malformed, a bad vote or signature: the sender penalised
	MsgsOverBudget uint64 // over the peer's budget, dropped before validation
	VotesValid     uint64 // votes handed to the handler
	VotesPublished uint64 // own votes sent
	OutboxDropped  uint64 // own votes that found no room in the outbox
}

// voteGossip is the node's vote topic, outbox and counters.
type voteGossip struct {
	topic    *pubsub.Topic
	h        VoteHandler
	verifier *chain.SigVerifier

	mu    sync.Mutex
	queue []chain.Vote
	wake  chan struct{}

	accepted, ignored, rejected, overBudget atomic.Uint64
	valid, published, dropped               atomic.Uint64
}

// VoteStats returns the vote gossip counters (zero when the handler takes
// no votes).
func (n *Node) VoteStats() VoteStats {
	g := n.votes
	if g == nil {
		return VoteStats{}
	}
	return VoteStats{
		MsgsAccepted: g.accepted.Load(), MsgsIgnored: g.ignored.Load(), MsgsRejected: g.rejected.Load(),
		MsgsOverBudget: g.overBudget.Load(), VotesValid: g.valid.Load(),
		VotesPublished: g.published.Load(), OutboxDropped: g.dropped.Load(),
	}
}

// startVoteGossip joins the vote topic on the block router if the handler
// takes votes. Called by startGossip once pubsub runs.
func (n *Node) startVoteGossip() error {
	vh, ok := n.h.(VoteHandler)
	if !ok {
		return nil
	}
	ver := n.cfg.SigVerifier
	if ver == nil {
		ver = chain.NewSigVerifier(0)
	}
	g := &voteGossip{h: vh, verifier: ver, wake: make(chan struct{}, 1)}
	name := VoteTopic(n.cfg.ChainID)
	if err := n.bps.RegisterTopicValidator(name, n.validateVotes, pubsub.WithValidatorConcurrency(voteValidators)); err != nil {
		return fmt.Errorf("p2p: vote validator: %w", err)
	}
	t, err := n.bps.Join(name)
	if err != nil {
		return fmt.Errorf("p2p: join %s: %w", name, err)
	}
	sub, err := t.Subscribe(pubsub.WithBufferSize(blockQueue))
	if err != nil {
		return fmt.Errorf("p2p: subscribe: %w", err)
	}
	g.topic = t
	n.votes = g
	n.subs = append(n.subs, sub)
	n.spawn(func() {
		for {
			if _, err := sub.Next(n.ctx); err != nil {
				return
			}
		}
	})
	n.spawn(n.voteFlushLoop)
	return nil
}

// validateVotes is the vote topic's validator.
func (n *Node) validateVotes(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if from == n.host.ID() {
		return pubsub.ValidationAccept // our own: the node pooled them before publishing
	}
	g := n.votes
	if g == nil || !n.enter() {
		return pubsub.ValidationIgnore
	}
	defer n.leave()
	res := n.judgeVotes(g, from, msg.Data)
	switch res {
	case pubsub.ValidationAccept:
		g.accepted.Add(1)
	case pubsub.ValidationReject:
		g.rejected.Add(1)
	default:
		g.ignored.Add(1)
	}
	return res
}

func (n *Node) judgeVotes(g *voteGossip, from peer.ID, data []byte) pubsub.ValidationResult {
	count, err := voteBatchCount(data)
	if err != nil {
		n.offence(from, "vote message", err)
		return pubsub.ValidationReject
	}
	if !n.book.admitVotes(from, count, time.Now()) {
		g.overBudget.Add(1)
		traceVotes(n, nil)
		n.log.Debug("p2p: vote message over the peer's budget, dropped", "peer", from, "votes", count)
		return pubsub.ValidationIgnore
	}
	votes, err := decodeVoteBatch(data)
	if err != nil {
		n.offence(from, "vote message", err)
		return pubsub.ValidationReject
	}
	for i := range votes {
		if err := votes[i].CheckStateless(); err != nil {
			n.offence(from, "vote message", fmt.Errorf("vote %d: %w", i, err))
			return pubsub.ValidationReject
		}
	}
	for i, err := range verifyVotes(g.verifier, n.cfg.ChainID, votes) {
		if err != nil {
			n.offence(from, "vote message", fmt.Errorf("vote %d: %w", i, err))
			return pubsub.ValidationReject
		}
	}
	g.valid.Add(uint64(len(votes)))
	traceVotes(n, votes)
	switch err := g.h.HandleVotes(votes); {
	case err == nil:
		return pubsub.ValidationAccept
	case IsReject(err):
		n.offence(from, "vote message", err)
		return pubsub.ValidationReject
	default:
		if !errors.Is(err, ErrIgnore) {
			n.log.Debug("p2p: votes not taken", "peer", from, "err", err)
		}
		return pubsub.ValidationIgnore
	}
}

// voteDirect is the most votes of a message whose signatures are checked
// one by one, outside the process-wide verification slots. A node's
// message holds its keys' votes on one head (one, mostly): waiting for a
// slot behind the transaction batches the pool admits took seconds on 20
// nodes under load, and a late vote delays finality; a few single checks
// cost less than that wait. Larger messages are batch-checked.
const voteDirect = 4

// verifyVotes checks the votes' signatures (ZIP-215, as blocks' votes are
// checked): one by one when they are few (voteDirect), else as a batch.
func verifyVotes(ver *chain.SigVerifier, chainID string, votes []chain.Vote) []error {
	if len(votes) > voteDirect {
		return ver.VerifyVotes(chainID, votes)
	}
	errs := make([]error, len(votes))
	for i := range votes {
		errs[i] = votes[i].VerifySignature(chainID)
	}
	return errs
}

// voteBatchCount reads a vote message's count and checks the message is
// exactly that many votes long.
func voteBatchCount(data []byte) (int, error) {
	count, k := chain.Uvarint(data)
	if k <= 0 {
		return 0, errors.New("bad vote count")
	}
	if count == 0 || count > maxVoteBatch {
		return 0, fmt.Errorf("vote count %d (limit %d)", count, maxVoteBatch)
	}
	if uint64(len(data)-k) != count*chain.EncodedVoteLen {
		return 0, fmt.Errorf("%d votes in %d bytes", count, len(data)-k)
	}
	return int(count), nil
}

// decodeVoteBatch decodes a vote message.
func decodeVoteBatch(data []byte) ([]chain.Vote, error) {
	count, err := voteBatchCount(data)
	if err != nil {
		return nil, err
	}
	_, k := chain.Uvarint(data)
	data = data[k:]
	votes := make([]chain.Vote, count)
	for i := range votes {
		v, err := chain.DecodeVote(data[i*chain.EncodedVoteLen : (i+1)*chain.EncodedVoteLen])
		if err != nil {
			return nil, fmt.Errorf("vote %d: %w", i, err)
		}
		votes[i] = *v
	}
	return votes, nil
}

// encodeVoteBatch encodes up to maxVoteBatch votes as one message and
// returns how many it took.
func encodeVoteBatch(votes []chain.Vote) ([]byte, int) {
	used := min(len(votes), maxVoteBatch)
	out := make([]byte, 0, 10+used*chain.EncodedVoteLen)
	out = binary.AppendUvarint(out, uint64(used))
	for i := range votes[:used] {
		out = chain.AppendVote(out, &votes[i])
	}
	return out, used
}

// PublishVotes gossips the node's own votes (the node pools them itself).
// It never waits: votes beyond the outbox's room are dropped and counted
// (VoteStats.OutboxDropped). A node whose handler takes no votes drops
// them all.
func (n *Node) PublishVotes(votes []chain.Vote) {
	g := n.votes
	if g == nil || len(votes) == 0 {
		return
	}
	traceVotes(n, votes)
	g.mu.Lock()
	room := max(0, voteOutboxVotes-len(g.queue))
	take := min(room, len(votes))
	g.queue = append(g.queue, votes[:take]...)
	g.mu.Unlock()
	if take < len(votes) {
		g.dropped.Add(uint64(len(votes) - take))
	}
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// voteFlushLoop publishes the outbox's votes in batches, at most one flush
// per voteFlushGap.
func (n *Node) voteFlushLoop() {
	g := n.votes
	lastFail := map[*pubsub.Topic]time.Time{}
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-g.wake:
		}
		g.mu.Lock()
		votes := g.queue
		g.queue = nil
		g.mu.Unlock()
		for len(votes) > 0 {
			data, used := encodeVoteBatch(votes)
			votes = votes[used:]
			n.publishOne(pubItem{g.topic, data}, lastFail)
			g.published.Add(uint64(used))
		}
		pause.Reset(voteFlushGap)
		select {
		case <-n.ctx.Done():
			return
		case <-pause.C:
		}
	}
}

// admitVotes spends p's vote budget for one message of count votes.
func (b *peerBook) admitVotes(p peer.ID, count int, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.account(p)
	if a.voteMsgs == nil {
		msgRate, voteRate := b.voteMsgRate, b.voteRate
		if msgRate <= 0 {
			msgRate = DefaultVoteMsgRate
		}
		if voteRate <= 0 {
			voteRate = DefaultVoteRate
		}
		a.voteMsgs = rate.NewLimiter(rate.Limit(msgRate), int(math.Ceil(2*msgRate)))
		// A burst of at least one full batch.
		a.votes = rate.NewLimiter(rate.Limit(voteRate), max(int(2*voteRate), maxVoteBatch))
	}
	return a.voteMsgs.AllowN(now, 1) && a.votes.AllowN(now, count)
}

// Vote tracing, for measurement harnesses (daemon/wan times how long a
// block's votes take to reach each node): every vote a node takes, its
// own as it publishes them and others' once their signatures verified,
// with the node's peer id; a message dropped over its sender's budget
// comes as no votes. Without a tracer it costs one atomic load per
// message.
var (
	tracersOn atomic.Int32
	tracersMu sync.Mutex
	tracers   = map[*func(self string, votes []chain.Vote)]struct{}{}
)

// TraceVotes calls fn with every vote message any node of this process
// takes (self: the taking node's peer id; votes nil: a message dropped
// over its sender's budget), from the node's gossip
// goroutines, until cancel is called. fn must be quick and must not keep
// votes.
func TraceVotes(fn func(self string, votes []chain.Vote)) (cancel func()) {
	p := &fn
	tracersMu.Lock()
	tracers[p] = struct{}{}
	tracersOn.Add(1)
	tracersMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			tracersMu.Lock()
			delete(tracers, p)
			tracersOn.Add(-1)
			tracersMu.Unlock()
		})
	}
}

func traceVotes(n *Node, votes []chain.Vote) {
	if tracersOn.Load() == 0 {
		return
	}
	self := n.host.ID().String()
	tracersMu.Lock()
	defer tracersMu.Unlock()
	for fn := range tracers {
		(*fn)(self, votes)
	}
}
