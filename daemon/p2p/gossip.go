package p2p

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/poslab/posd/chain"
)

const (
	maxBatchBytes = 512 << 10 // a tx batch message is split above this (txQueueBudget)
	maxBatchTxs   = 4096
	maxTxLen      = 4096 // an encoded tx is at most ~2.4 KB (9 fields of ≤ 256 bytes)
	minTxLen      = 30   // 6 empty strings and 3 integers
	readyTimeout  = 2 * time.Second
	readyRetry    = 10 * time.Second // after a failed wait, do not wait again for this long
	// txValidators is how many tx messages are validated at once (gossip
	// and fill answers together); gossiped ones wait for their turns in the
	// order they came (txturns.go). Blocks have their own router and
	// worker.
	txValidators = 1
)

// TxTopic and BlockTopic name the gossip topics of a chain.
func TxTopic(chainID string) string    { return "/posd/" + chainID + "/txs/1" }
func BlockTopic(chainID string) string { return "/posd/" + chainID + "/blocks/1" }

type pubItem struct {
	topic *pubsub.Topic
	data  []byte
}

// BlockProtocol is the gossipsub protocol of the block router: blocks and
// evidence travel on their own gossipsub, with their own streams, queues
// and event loop, so a block never waits in gossipsub's queues behind
// transaction batches (it still shares the connection and the CPU).
// Sharing one router, a block forged under load reached its peers 0.3–1 s
// after its import, against 30–200 ms with no transactions in flight
// (docs/PERFORMANCE.md).
const BlockProtocol = protocol.ID("/posd/blocksub/1.2.0")

// blockRouterFeatures gives BlockProtocol gossipsub v1.2's features.
func blockRouterFeatures(feat pubsub.GossipSubFeature, proto protocol.ID) bool {
	return proto == BlockProtocol && pubsub.GossipSubDefaultFeatures(feat, pubsub.GossipSubID_v12)
}

// maxTxMessageSize bounds a message of the transaction router: a batch is
// at most maxBatchBytes (encodeTxBatch), plus gossipsub's framing.
const maxTxMessageSize = maxBatchBytes + 64<<10

// blockQueue bounds the block router's per-peer and validation queues in
// messages. Blocks come a few a second, not thousands of batches: 64
// blocks of at most maxMessageSize is what a peer that never reads can
// make us hold for it (with the tx router's old 4096 it was 32 GiB); a
// peer that falls behind by more gets the blocks by sync.
const blockQueue = 64

// txQueue bounds the tx router's per-peer outbound queue and its
// validation queue in messages. A node flushes its outbox 20 times a
// second (txFlushGap) and a peer takes at most DefaultTxMsgRate tx
// messages a second from it, so 64 is over a second of honest traffic,
// and room for a full outbox's flush (txOutboxBytes/maxBatchBytes = 32).
// With 4096 messages of ~1 MiB, a peer that never read could make us hold
// 4 GiB for it; now txQueueBudget.
const txQueue = 64

// txQueueBudget is the most a peer that never reads makes us hold in its
// outbound queue of the tx router (gossipsub splits or drops an RPC over
// maxTxMessageSize), and the most the validation queue holds.
const txQueueBudget = txQueue * maxTxMessageSize // 36 MiB

// newRouter starts a gossipsub router for topics with the node's scoring
// and limits: messages of at most maxMsg bytes, queues of queue messages,
// plus extra options.
func (n *Node) newRouter(topics []string, maxMsg, queue int, extra ...pubsub.Option) (*pubsub.PubSub, error) {
	// Only rejected messages (P4) cost score; other terms stay off so
	// honest nodes sharing one IP are not penalised.
	topicScore := &pubsub.TopicScoreParams{
		SkipAtomicValidation:           true,
		TopicWeight:                    1,
		TimeInMeshQuantum:              time.Second, // a divisor even at weight 0
		InvalidMessageDeliveriesWeight: -10,
		InvalidMessageDeliveriesDecay:  0.99,
	}
	score := &pubsub.PeerScoreParams{
		SkipAtomicValidation: true,
		Topics:               map[string]*pubsub.TopicScoreParams{},
		// Offences outside gossip too (sync, status): see peerBook.
		AppSpecificScore:  func(p peer.ID) float64 { return -appScoreWeight * n.book.penaltyOf(p, time.Now()) },
		AppSpecificWeight: 1,
		DecayInterval:     time.Second,
		DecayToZero:       0.01,
		RetainScore:       10 * time.Minute,
	}
	for _, t := range topics {
		score.Topics[t] = topicScore
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:   -100,
		PublishThreshold:  -200,
		GraylistThreshold: -400,
	}
	opts := []pubsub.Option{
		// Transactions and blocks carry their own signatures.
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(func(m *pb.Message) string {
			sum := sha256.Sum256(m.Data)
			return string(sum[:])
		}),
		pubsub.WithPeerOutboundQueueSize(queue),
		pubsub.WithValidateQueueSize(queue),
		// One validation worker: on the block router it runs the block
		// validator inline, so blocks keep their order (parents first); on
		// the tx router it runs admitTxMessage inline, which gives each tx
		// message its turn in the order they came (txturns.go), and the tx
		// validator runs asynchronously, each call waiting for its turn.
		pubsub.WithValidateWorkers(1),
		pubsub.WithMaxMessageSize(maxMsg),
		pubsub.WithPeerScore(score, thresholds),
		// Our own messages go to every peer of the topic, not only the mesh,
		// which is empty until the first heartbeat (off by default).
		pubsub.WithFloodPublish(true),
		pubsub.WithRawTracer(n.mesh),
	}
	return pubsub.NewGossipSub(n.ctx, n.host, append(opts, extra...)...)
}

func (n *Node) startGossip() error {
	txT, blkT := TxTopic(n.cfg.ChainID), BlockTopic(n.cfg.ChainID)
	ps, err := n.newRouter([]string{txT}, maxTxMessageSize, txQueue,
		pubsub.WithDefaultValidator(n.admitTxMessage, pubsub.WithValidatorInline(true)))
	if err != nil {
		return fmt.Errorf("p2p: pubsub: %w", err)
	}
	bps, err := n.newRouter([]string{blkT, EvidenceTopic(n.cfg.ChainID), VoteTopic(n.cfg.ChainID)}, maxMessageSize, blockQueue,
		pubsub.WithGossipSubProtocols([]protocol.ID{BlockProtocol}, blockRouterFeatures))
	if err != nil {
		return fmt.Errorf("p2p: block pubsub: %w", err)
	}
	n.ps, n.bps = ps, bps
	// The tx validator reads n.fill: it is made before the validator may run.
	if _, ok := n.h.(TxFiller); ok {
		n.fill = newTxFill()
	}
	if err := ps.RegisterTopicValidator(txT, n.validateTxs); err != nil {
		return fmt.Errorf("p2p: tx validator: %w", err)
	}
	if err := bps.RegisterTopicValidator(blkT, n.validateBlock, pubsub.WithValidatorInline(true)); err != nil {
		return fmt.Errorf("p2p: block validator: %w", err)
	}
	if n.txTopic, err = ps.Join(txT); err != nil {
		return fmt.Errorf("p2p: join %s: %w", txT, err)
	}
	if n.blkTopic, err = bps.Join(blkT); err != nil {
		return fmt.Errorf("p2p: join %s: %w", blkT, err)
	}
	for _, t := range []*pubsub.Topic{n.txTopic, n.blkTopic} {
		sub, err := t.Subscribe(pubsub.WithBufferSize(queueSize))
		if err != nil {
			return fmt.Errorf("p2p: subscribe: %w", err)
		}
		n.subs = append(n.subs, sub)
		// Messages were handled by the validators; drain the subscription.
		n.spawn(func() {
			for {
				if _, err := sub.Next(n.ctx); err != nil {
					return
				}
			}
		})
	}
	if err := n.startEvidenceGossip(); err != nil {
		return err
	}
	if err := n.startVoteGossip(); err != nil { // votes.go
		return err
	}
	n.startTxFill()
	n.spawn(n.txFlushLoop) // txout.go
	n.spawn(func() { n.publishLoop(n.blkQ) })
	return nil
}

// PublishTxs gossips txs, many per message (txout.go). It does not wait
// for the network, only for room in the outbox.
func (n *Node) PublishTxs(txs []chain.Transaction) {
	n.txOut.add(n.ctx, txs, false, true)
}

// PublishBlock gossips b. It does not wait for the network.
func (n *Node) PublishBlock(b *chain.Block) {
	n.enqueue(n.blkTopic, chain.EncodeBlock(b))
}

func (n *Node) enqueue(t *pubsub.Topic, data []byte) {
	if t == nil || len(data) > maxMessageSize {
		return
	}
	select {
	case n.blkQ <- pubItem{t, data}: // transactions go through txOut
	case <-n.ctx.Done():
	}
}

// publishLoop publishes q's messages in order. A message is only published
// when some peer of the topic can get it: published before the peers
// exchanged their subscriptions, it would be lost (and its id marked as
// seen).
func (n *Node) publishLoop(q chan pubItem) {
	lastFail := map[*pubsub.Topic]time.Time{}
	for {
		var it pubItem
		select {
		case <-n.ctx.Done():
			return
		case it = <-q:
		}
		n.publishOne(it, lastFail)
	}
}

// publishOne publishes it unless no peer can get it; lastFail remembers
// per topic when waiting for a peer last failed.
func (n *Node) publishOne(it pubItem, lastFail map[*pubsub.Topic]time.Time) {
	if len(n.host.Network().Peers()) == 0 {
		return // alone: nobody to tell
	}
	if len(it.topic.ListPeers()) == 0 {
		if time.Since(lastFail[it.topic]) < readyRetry || !n.waitTopicPeers(it.topic) {
			lastFail[it.topic] = time.Now()
			n.log.Debug("p2p: no peer on the topic, message not published", "topic", it.topic.String())
			return
		}
	}
	if err := it.topic.Publish(n.ctx, it.data); err != nil && n.ctx.Err() == nil {
		n.log.Warn("p2p: publish failed", "topic", it.topic.String(), "err", err)
	}
}

func (n *Node) waitTopicPeers(t *pubsub.Topic) bool {
	ctx, cancel := context.WithTimeout(n.ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(t.ListPeers()) == 0 {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// admitTxMessage runs inline on the tx router's validation worker, for
// each tx message in the order they came, before validateTxs: it checks
// the count, spends the peer's budget, and gives the message its turn
// (txturns.go), which validateTxs waits for. Only cheap work here: the
// router's queue must drain whatever a peer sends.
//
// The tx router carries the tx topic alone (startGossip): every message
// this default validator sees is a tx batch.
func (n *Node) admitTxMessage(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if from == n.host.ID() {
		return pubsub.ValidationAccept // handled before publishing
	}
	count, err := txBatchCount(msg.Data)
	if err != nil {
		n.offence(from, "tx message", err)
		return pubsub.ValidationReject
	}
	// Turns are given on this goroutine alone: one free now is free at
	// give. Checked first, so a message dropped for want of one costs
	// its peer no budget.
	now := time.Now()
	if n.txTurns.full(now) {
		n.log.Debug("p2p: tx message over the validation turns, dropped", "peer", from, "txs", count)
		n.txTurnsFull.Add(1)
		return pubsub.ValidationIgnore
	}
	if !n.book.admitTxs(from, count, now) {
		n.log.Debug("p2p: tx message over the peer's budget, dropped", "peer", from, "txs", count)
		n.txOverBudget.Add(1)
		return pubsub.ValidationIgnore
	}
	turn := n.txTurns.give(now, func() { n.book.doneTxs(from) })
	if turn == nil { // only were turns given elsewhere meanwhile
		n.book.doneTxs(from)
		n.txTurnsFull.Add(1)
		return pubsub.ValidationIgnore
	}
	msg.ValidatorData = turn
	return pubsub.ValidationAccept
}

// validateTxs admits a tx message's transactions to the pool, in the
// message's turn (admitTxMessage gave it), and says whether to forward it.
func (n *Node) validateTxs(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if from == n.host.ID() {
		return pubsub.ValidationAccept // handled before publishing
	}
	turn, ok := msg.ValidatorData.(*txTurn)
	if !ok {
		return pubsub.ValidationIgnore // admitTxMessage dropped it, and said why
	}
	if !n.enter() {
		n.txTurns.end(turn)
		return pubsub.ValidationIgnore
	}
	defer n.leave()
	if !n.txTurns.wait(ctx, turn) {
		return pubsub.ValidationIgnore
	}
	defer n.txTurns.end(turn)
	select {
	case n.txSem <- struct{}{}:
		defer func() { <-n.txSem }()
	case <-ctx.Done():
		return pubsub.ValidationIgnore
	case <-n.ctx.Done():
		return pubsub.ValidationIgnore
	}
	ptrs, err := decodeTxBatch(msg.Data)
	if err != nil {
		n.offence(from, "tx message", err)
		return pubsub.ValidationReject
	}
	txs := make([]chain.Transaction, len(ptrs))
	for i, tx := range ptrs {
		txs[i] = *tx
	}
	relay, err := n.handleTxs(from, txs) // txfill.go
	if IsReject(err) {
		n.offence(from, "tx message", err)
		return pubsub.ValidationReject
	}
	if len(relay) == 0 {
		return pubsub.ValidationIgnore
	}
	if extra, whole := relayBeyond(relay, txs); whole {
		// Forwarded as it came: a peer that already has the message drops
		// it by its id, unread, where a new message would be read whole
		// and refused as known. Only what it promoted besides (a sender's
		// later nonces this node held gapped) goes out as a new message.
		if len(extra) > 0 {
			n.tryPublishTxs(extra)
		}
		return pubsub.ValidationAccept
	}
	// Part of the message is not worth gossiping (known, gapped, unpayable):
	// gossip the rest as our own message.
	n.tryPublishTxs(relay)
	return pubsub.ValidationIgnore
}

// relayBeyond reports whether relay (what the pool took and made ready)
// holds every transaction of msg, which is then forwarded as it came, and
// returns relay's others: those msg promoted but did not carry. They are
// compared whole, as map keys (no hashing of signing bytes): msg may
// carry a refused copy of a promoted transaction, same signature, another
// field changed, which must not pass for it (forwarding it would get this
// node penalised by every peer that checks the signature).
func relayBeyond(relay, msg []chain.Transaction) (extra []chain.Transaction, whole bool) {
	if len(relay) < len(msg) {
		return nil, false
	}
	count := make(map[chain.Transaction]int, len(msg))
	for i := range msg {
		count[msg[i]]++
	}
	for i := range relay {
		if count[relay[i]] > 0 {
			count[relay[i]]--
			continue
		}
		extra = append(extra, relay[i])
	}
	if len(relay)-len(extra) != len(msg) {
		return nil, false
	}
	return extra, true
}

// tryPublishTxs is PublishTxs that drops (counted, logged) what does not
// fit the outbox instead of waiting: validators must not block, and the
// origin gossips lingering transactions again anyway.
func (n *Node) tryPublishTxs(txs []chain.Transaction) {
	n.txOut.add(n.ctx, txs, false, false)
}

func (n *Node) validateBlock(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if from == n.host.ID() {
		return pubsub.ValidationAccept
	}
	if !n.enter() {
		return pubsub.ValidationIgnore
	}
	defer n.leave()
	if !n.book.admitBlock(from, time.Now()) {
		n.log.Debug("p2p: block message over the peer's budget, dropped", "peer", from)
		return pubsub.ValidationIgnore
	}
	b, err := chain.DecodeBlock(msg.Data)
	if err != nil {
		n.offence(from, "block message", err)
		return pubsub.ValidationReject
	}
	err = n.h.HandleBlock(b)
	switch {
	case err == nil:
		return pubsub.ValidationAccept
	case IsReject(err):
		n.offence(from, "block message", err)
		n.log.Debug("p2p: block rejected", "peer", from, "height", b.Height, "err", err)
		return pubsub.ValidationReject
	case errors.Is(err, ErrUnknownParent):
		// Not forwarded; the sender must back it by sync (judgeOrphans).
		n.book.claimOrphan(from, b.PrevHash, b.Height, time.Now())
		n.requestSync(from, b.Height)
		return pubsub.ValidationIgnore
	default:
		if !errors.Is(err, ErrIgnore) {
			n.log.Debug("p2p: block not taken", "peer", from, "height", b.Height, "err", err)
		}
		return pubsub.ValidationIgnore
	}
}

// encodeTxBatch encodes a prefix of txs that fits one message and returns
// how many it took (at least one).
func encodeTxBatch(txs []chain.Transaction) ([]byte, int) {
	encs := make([][]byte, 0, min(len(txs), maxBatchTxs))
	for i := range txs[:min(len(txs), maxBatchTxs)] {
		encs = append(encs, chain.EncodeTx(&txs[i]))
	}
	return frameTxBatch(encs)
}

// txBatchCount reads the count of a tx batch, checking it is plausible
// for the message's size, without decoding the transactions.
func txBatchCount(data []byte) (int, error) {
	count, k := chain.Uvarint(data)
	if k <= 0 {
		return 0, errors.New("bad count")
	}
	if count == 0 || count > maxBatchTxs || count > uint64(len(data[k:])/(minTxLen+1)) {
		return 0, fmt.Errorf("bad count %d", count)
	}
	return int(count), nil
}

func decodeTxBatch(data []byte) ([]*chain.Transaction, error) {
	n, err := txBatchCount(data)
	if err != nil {
		return nil, err
	}
	count := uint64(n)
	_, k := chain.Uvarint(data)
	data = data[k:]
	txs := make([]*chain.Transaction, 0, count)
	for range count {
		size, k := chain.Uvarint(data)
		if k <= 0 || size > maxTxLen || size > uint64(len(data)-k) {
			return nil, errors.New("bad tx length")
		}
		tx, err := chain.DecodeTx(data[k : k+int(size)])
		if err != nil {
			return nil, err
		}
		txs = append(txs, tx)
		data = data[k+int(size):]
	}
	if len(data) != 0 && !isSaltTrailer(data) { // regossip.go
		return nil, fmt.Errorf("%d trailing bytes", len(data))
	}
	return txs, nil
}

// meshTracer follows which peers are in our mesh per topic. Gossipsub
// forwards a received message to mesh peers only, and the mesh forms at the
// heartbeats after a peer joins, so meshPeers tells when forwarding works.
type meshTracer struct {
	mu   sync.Mutex
	mesh map[string]map[peer.ID]struct{}
}

func newMeshTracer() *meshTracer { return &meshTracer{mesh: map[string]map[peer.ID]struct{}{}} }

func (m *meshTracer) peers(topic string) []peer.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]peer.ID, 0, len(m.mesh[topic]))
	for p := range m.mesh[topic] {
		out = append(out, p)
	}
	return out
}

func (m *meshTracer) Graft(p peer.ID, topic string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mesh[topic] == nil {
		m.mesh[topic] = map[peer.ID]struct{}{}
	}
	m.mesh[topic][p] = struct{}{}
}

func (m *meshTracer) Prune(p peer.ID, topic string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.mesh[topic], p)
}

// removePeer is called on disconnection (not traced by pubsub).
func (m *meshTracer) removePeer(p peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, set := range m.mesh {
		delete(set, p)
	}
}

func (m *meshTracer) Leave(topic string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.mesh, topic)
}

func (*meshTracer) Join(string)                                          {}
func (*meshTracer) ValidateMessage(*pubsub.Message)                      {}
func (*meshTracer) DeliverMessage(*pubsub.Message)                       {}
func (*meshTracer) RejectMessage(*pubsub.Message, string)                {}
func (*meshTracer) DuplicateMessage(*pubsub.Message)                     {}
func (*meshTracer) ThrottlePeer(peer.ID)                                 {}
func (*meshTracer) RecvRPC(*pubsub.RPC)                                  {}
func (*meshTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (*meshTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (*meshTracer) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (*meshTracer) UndeliverableMessage(*pubsub.Message)                 {}
func (*meshTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (*meshTracer) OnClosedOutboundStream(peer.ID)                       {}
