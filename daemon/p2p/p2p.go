// Package p2p connects a node to its peers over libp2p: it gossips
// transactions and blocks, checks that peers share the genesis, and syncs the
// chain from peers that are ahead.
//
// Wire protocols (all integers big endian):
//
//	/posd/status/1  each side sends version(1) genesis(32) height(8) head(32)
//	/posd/sync/1    request from(8) limit(4); response uvarint length + EncodeBlock
//	                per block, ascending, then a zero length
//	gossipsub       /meshsub/1.x: topic /posd/<chain_id>/txs/1: uvarint count,
//	                then per tx uvarint length + EncodeTx
//	/posd/blocksub/1.2.0  gossipsub v1.2 for blocks, evidence and votes alone
//	                (BlockProtocol): /posd/<chain_id>/blocks/1: EncodeBlock;
//	                /posd/<chain_id>/evidence/1: EncodeEvidence;
//	                /posd/<chain_id>/votes/1: uvarint count (1..256), then
//	                count × EncodeVote (votes.go; joined only by a VoteHandler)
//	/posd/txfill/1.0.0  request uvarint length + address, uvarint nonce;
//	                response a tx batch as on the txs topic, or nothing
//	                (txfill.go); optional: asking a peer without it fails,
//	                and the status version stays
//	/ipfs/ping/1.0.0  libp2p's ping: 32 bytes echoed, to measure each peer's
//	                round-trip time (rtt.go)
//
// The status's version (2) changes with any of them.
package p2p

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-libp2p/x/rate"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// Handler is the node side. Its methods are called from libp2p goroutines
// concurrently.
//
// Verdicts: a Handler method returns nil (accepted), an error wrapping
// ErrReject (see Reject: the message broke a rule; it is dropped and held
// against the peer that sent it), ErrUnknownParent (blocks: I lack its
// parent; sync from that peer), or any other error, which is ignored: the
// message is dropped but nobody is penalised. So a Handler that fails for
// its own reasons (disk, halted chain, busy) can never cost an honest peer
// its standing; only a classified rule break does. See score.go.
type Handler interface {
	GenesisHash() chain.Hash
	Head() (height uint64, hash chain.Hash)
	// HandleTxs validates and pools the transactions of one gossiped
	// message. relay is what the node admitted as executable (pending):
	// only that is gossiped on. A message whose every transaction is
	// relayed is forwarded as it came (and what relay holds besides, later
	// nonces it promoted, is published as a new message); otherwise the
	// relay set is published as a new message and the original is
	// dropped, so transactions that are gapped, unpayable or known never
	// travel further.
	HandleTxs(txs []chain.Transaction) (relay []chain.Transaction, err error)
	// HandleBlock validates and imports a gossiped or synced block.
	HandleBlock(b *chain.Block) error
	// Blocks serves sync: main-chain blocks [from, from+limit), ascending.
	Blocks(from uint64, limit int) ([]*chain.Block, error)
}

// BatchHandler is a Handler that can import many consecutive blocks at once
// (one disk commit instead of one per block). Sync uses it when the handler
// has it. HandleBlocks returns how many blocks it got through and the error
// of the first it could not take (HandleBlock's conventions).
type BatchHandler interface {
	HandleBlocks(blocks []*chain.Block) (accepted int, err error)
}

// BlockKnower is a Handler that can tell whether it holds a block (on the
// main chain or a side branch). With it, a peer that gossips blocks on
// parents it then cannot serve by sync is penalised (score.go, orphans).
type BlockKnower interface {
	HasBlock(h chain.Hash) bool
}

// ErrIgnore may be returned (or wrapped) by a Handler for a message that is
// not forwarded and is not the sender's fault either (e.g. already known).
// Any error that does not wrap ErrReject is treated so; ErrIgnore says it
// explicitly.
var ErrIgnore = errors.New("ignore")

// ErrUnknownParent is returned (or wrapped) by HandleBlock when the parent of
// the block is unknown: the node is behind or on another fork.
var ErrUnknownParent = errors.New("unknown parent")

// Config configures a Node.
type Config struct {
	ListenHost string             // e.g. 127.0.0.1; empty = 0.0.0.0
	Port       int                // TCP port; 0 = random
	PrivateKey ed25519.PrivateKey // node identity; nil = a random one
	ChainID    string             // topics are /posd/<chain_id>/txs/1 and /posd/<chain_id>/blocks/1
	Peers      []string           // multiaddrs with /p2p/<id> to connect to at start (and re-dial periodically if disconnected)
	MDNS       bool
	Logger     *slog.Logger
	// Metrics receives libp2p's own metrics (swarm, identify, event bus,
	// ...); nil turns them off.
	Metrics prometheus.Registerer

	// Per-peer gossip budgets; zero takes the default. Messages beyond a
	// budget are dropped before validation (ignored, not forwarded).
	TxMsgRate    float64 // tx messages per second (DefaultTxMsgRate)
	TxRate       float64 // transactions per second (DefaultTxRate)
	BlockMsgRate float64 // block messages per second (DefaultBlockMsgRate)
	VoteMsgRate  float64 // vote messages per second (DefaultVoteMsgRate)
	VoteRate     float64 // votes per second (DefaultVoteRate)

	// SigVerifier checks gossiped votes' signatures in batches (the
	// node's transaction verifier, so both share its key cache); nil
	// makes one.
	SigVerifier *chain.SigVerifier

	// CatchUp, if set, is called when a sync session starts more than
	// catchUpBlocks behind its peer, and what it returns when the session
	// ends (posd lowers its memory limit meanwhile: internal/tune).
	CatchUp func() (done func())

	// NewHost, if set, makes the node's libp2p host instead of a TCP
	// listener on ListenHost:Port: an emulated network (daemon/wan) puts
	// every node on its own links in one process. The node owns the host
	// (Close closes it). Such a host has no connection gater or resource
	// manager of ours: it only ever meets the emulator's peers.
	NewHost HostFunc
}

// HostFunc makes a libp2p host with the node's identity key.
type HostFunc func(key crypto.PrivKey) (host.Host, error)

// Protocol ids.
const (
	StatusProtocol = "/posd/status/1"
	SyncProtocol   = "/posd/sync/1"
)

// syncServeBytes ends a served range once it passed this many bytes (a
// variable for tests).
var syncServeBytes = 16 << 20

// Limits and intervals.
const (
	maxMessageSize = 8 << 20 // pubsub message and encoded block limit
	maxSyncRange   = 500     // blocks per sync request
	// syncServeChunk blocks are read from the store at a time when serving
	// a range, and an answer ends once it passed syncServeBytes (the asker
	// requests the rest): a peer cannot make us hold 500 big blocks.
	syncServeChunk = 8
	statusTimeout  = 10 * time.Second
	dialTimeout    = 5 * time.Second
	queueSize      = 4096 // gossipsub queues (the default 32 drops under load)
	maxSyncServers = 8    // concurrent sync streams served
)

// redialInterval is how often configured and mDNS-found peers that are
// not connected are dialled again (a variable for tests).
var redialInterval = 10 * time.Second

// pollInterval is how often every peer's status is polled (a variable for tests).
var pollInterval = 3 * time.Second

// Node is a running libp2p host with gossip, status and sync.
type Node struct {
	cfg     Config
	h       Handler
	log     *slog.Logger
	host    host.Host
	gater   *gater
	book    *peerBook
	genesis chain.Hash
	// txSem bounds the tx messages validated at once (the others wait), so
	// transactions never take every core from block validation.
	txSem chan struct{}
	// txTurns orders the gossiped tx messages' validation (txturns.go);
	// txTurnsFull counts those dropped with every turn out
	// (TxMessagesOverTurns).
	txTurns     txTurns
	txTurnsFull atomic.Uint64
	// txOverBudget counts the tx messages dropped over their peer's
	// budget (TxMessagesOverBudget).
	txOverBudget atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc

	ps       *pubsub.PubSub // transactions
	bps      *pubsub.PubSub // blocks and evidence (BlockProtocol)
	txTopic  *pubsub.Topic
	blkTopic *pubsub.Topic
	evTopic  *pubsub.Topic // evidence.go; nil when the handler takes none
	votes    *voteGossip   // votes.go; nil when the handler takes none
	subs     []*pubsub.Subscription
	mesh     *meshTracer
	rtt      *rttBook     // peers' round-trip times (rtt.go)
	txOut    *txOutbox    // transactions to gossip (txout.go)
	fill     *txFill      // gap filling (txfill.go); nil when the handler does not
	blkQ     chan pubItem // blocks and evidence
	evSub    event.Subscription
	mdns     io.Closer
	mdnsSeen mdnsBook // peers mDNS found, dialled again by redialLoop

	mu       sync.Mutex
	peers    map[peer.ID]*peerState // handshaken peers
	dialList map[peer.ID]peer.AddrInfo
	// hints: peers that announced a block we cannot connect, with the
	// lowest height of those blocks (sync them from there even if their
	// last status is not ahead: a shorter branch can be the better one).
	hints map[peer.ID]syncHint
	// syncRecs: how each peer served sync, and until when it is left alone.
	syncRecs map[peer.ID]*syncRecord
	syncWake chan struct{}
	serveSem chan struct{}

	wgMu      sync.Mutex
	closed    bool
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

type peerState struct {
	height uint64
	head   chain.Hash
	// aheadHead and aheadSince: the peer's head when the sync loop found
	// it a few blocks ahead of us, and when; gossip has until
	// aheadSince+gossipGrace to bring that block (syncCandidates). Zero
	// when the peer is not ahead.
	aheadHead  chain.Hash
	aheadSince time.Time
}

// New starts the host, pubsub, stream handlers, discovery and the sync loop.
// ctx bounds the start only; the node runs until Close.
func New(ctx context.Context, cfg Config, h Handler) (*Node, error) {
	if h == nil {
		return nil, errors.New("p2p: nil handler")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ChainID == "" {
		return nil, errors.New("p2p: empty chain id")
	}
	var key crypto.PrivKey
	var err error
	if cfg.PrivateKey == nil {
		key, _, err = crypto.GenerateEd25519Key(rand.Reader)
	} else {
		key, err = crypto.UnmarshalEd25519PrivateKey(cfg.PrivateKey)
	}
	if err != nil {
		return nil, fmt.Errorf("p2p: node key: %w", err)
	}
	dials := map[peer.ID]peer.AddrInfo{}
	if err := addAddrInfos(dials, cfg.Peers); err != nil {
		return nil, err
	}
	g := &gater{banned: map[peer.ID]time.Time{}}
	var hst host.Host
	if cfg.NewHost != nil {
		if hst, err = cfg.NewHost(key); err != nil {
			return nil, fmt.Errorf("p2p: start host: %w", err)
		}
	} else if hst, err = newTCPHost(cfg, key, g); err != nil {
		return nil, err
	}
	delete(dials, hst.ID())

	nctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg:      cfg,
		h:        h,
		log:      cfg.Logger,
		host:     hst,
		gater:    g,
		book:     newPeerBook(cfg),
		txSem:    make(chan struct{}, txValidators),
		genesis:  h.GenesisHash(),
		ctx:      nctx,
		cancel:   cancel,
		txOut:    newTxOutbox(),
		blkQ:     make(chan pubItem, 256),
		peers:    map[peer.ID]*peerState{},
		dialList: dials,
		hints:    map[peer.ID]syncHint{},
		syncRecs: map[peer.ID]*syncRecord{},
		syncWake: make(chan struct{}, 1),
		serveSem: make(chan struct{}, maxSyncServers),
		mesh:     newMeshTracer(),
		rtt:      newRTTBook(),
	}
	fail := func(err error) (*Node, error) {
		n.Close()
		return nil, err
	}

	// Every new peer gets the status handshake.
	n.evSub, err = hst.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged), eventbus.BufSize(1024))
	if err != nil {
		return fail(fmt.Errorf("p2p: event bus: %w", err))
	}
	hst.SetStreamHandler(StatusProtocol, n.tracked(n.serveStatus))
	hst.SetStreamHandler(SyncProtocol, n.tracked(n.serveSync))
	if cfg.NewHost != nil {
		servePing(hst)
	}
	n.spawn(n.eventLoop)

	if err := n.startGossip(); err != nil {
		return fail(err)
	}
	n.spawn(n.syncLoop)
	n.spawn(n.redialLoop)
	n.spawn(n.rttLoop)

	if cfg.MDNS {
		svc := mdns.NewMdnsService(hst, "_posd._udp", mdnsNotifee{n})
		if err := svc.Start(); err != nil {
			n.log.Warn("p2p: mdns unavailable", "err", err)
		} else {
			n.mdns = svc
		}
	}
	n.log.Info("p2p: listening", "id", n.ID(), "addrs", n.Addrs())
	return n, nil
}

// ID returns the node's peer id.
func (n *Node) ID() string { return n.host.ID().String() }

// Addrs returns the node's listen multiaddrs including /p2p/<id>.
func (n *Node) Addrs() []string {
	var out []string
	for _, a := range n.host.Addrs() {
		out = append(out, a.String()+"/p2p/"+n.host.ID().String())
	}
	slices.Sort(out)
	return out
}

// Peers returns the connected peers that passed the status handshake, with
// their round-trip times when measured (rtt.go).
func (n *Node) Peers() []rpc.Peer {
	n.mu.Lock()
	ids := make([]peer.ID, 0, len(n.peers))
	for id := range n.peers {
		ids = append(ids, id)
	}
	n.mu.Unlock()
	slices.Sort(ids)
	out := make([]rpc.Peer, 0, len(ids))
	for _, id := range ids {
		conns := n.host.Network().ConnsToPeer(id)
		if len(conns) == 0 {
			continue
		}
		p := rpc.Peer{ID: id.String()}
		ewma, last := n.rtt.get(id)
		p.RTTMs, p.RTTLastMs = ms(ewma), ms(last)
		for _, c := range conns {
			p.Addrs = append(p.Addrs, c.RemoteMultiaddr().String()+"/p2p/"+id.String())
		}
		out = append(out, p)
	}
	return out
}

// Connect dials addrs (multiaddrs with /p2p/<id>), runs the status handshake
// with each peer and keeps re-dialling them when disconnected. It returns
// the errors of the peers it could not join (e.g. another genesis).
func (n *Node) Connect(ctx context.Context, addrs []string) error {
	if !n.enter() {
		return errors.New("p2p: node closed")
	}
	defer n.leave()
	infos := map[peer.ID]peer.AddrInfo{}
	if err := addAddrInfos(infos, addrs); err != nil {
		return err
	}
	delete(infos, n.host.ID())
	n.mu.Lock()
	for id, ai := range infos {
		n.dialList[id] = ai
	}
	n.mu.Unlock()
	var errs []error
	for _, ai := range infos {
		if err := n.dial(ctx, ai); err != nil {
			errs = append(errs, fmt.Errorf("peer %s: %w", ai.ID, err))
			continue
		}
		if _, err := n.handshake(ctx, ai.ID); err != nil {
			errs = append(errs, fmt.Errorf("peer %s: %w", ai.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Close shuts everything down and waits for the node's goroutines.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		n.wgMu.Lock()
		n.closed = true
		n.wgMu.Unlock()
		if n.mdns != nil {
			n.mdns.Close()
		}
		for _, s := range n.subs {
			s.Cancel()
		}
		if n.evSub != nil {
			n.evSub.Close()
		}
		n.closeErr = n.host.Close()
		n.wg.Wait()
	})
	return n.closeErr
}

// spawn runs f in a goroutine that Close waits for; false once closing.
func (n *Node) spawn(f func()) bool {
	n.wgMu.Lock()
	defer n.wgMu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// enter registers a call from a libp2p goroutine into the Handler, so Close
// can wait for it; false once closing.
func (n *Node) enter() bool {
	n.wgMu.Lock()
	defer n.wgMu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	return true
}

func (n *Node) leave() { n.wg.Done() }

// tracked wraps a stream handler so Close waits for it.
func (n *Node) tracked(f network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		if !n.enter() {
			s.Reset()
			return
		}
		defer n.leave()
		f(s)
	}
}

// eventLoop runs the handshake on every newly connected peer and forgets
// disconnected ones.
func (n *Node) eventLoop() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case ev, ok := <-n.evSub.Out():
			if !ok {
				return
			}
			e := ev.(event.EvtPeerConnectednessChanged)
			switch e.Connectedness {
			case network.Connected:
				p := e.Peer
				n.spawn(func() {
					if _, err := n.handshake(n.ctx, p); err != nil && n.ctx.Err() == nil {
						n.log.Debug("p2p: handshake failed", "peer", p, "err", err)
					}
				})
			case network.NotConnected:
				n.mu.Lock()
				delete(n.peers, e.Peer)
				n.mu.Unlock()
				n.mesh.removePeer(e.Peer)
				n.rtt.forget(e.Peer)
				n.book.forget(e.Peer, time.Now())
				n.log.Debug("p2p: peer disconnected", "peer", e.Peer)
			}
		}
	}
}

// redialLoop dials the configured peers at start and again whenever they are
// disconnected, and so the peers mDNS found (mdnsBook).
func (n *Node) redialLoop() {
	t := time.NewTicker(redialInterval)
	defer t.Stop()
	connected := func(id peer.ID) bool { return n.host.Network().Connectedness(id) == network.Connected }
	for {
		n.mu.Lock()
		var todo []peer.AddrInfo
		for id, ai := range n.dialList {
			if !connected(id) && !n.gater.isBanned(id) {
				todo = append(todo, ai)
			}
		}
		n.mu.Unlock()
		todo = append(todo, n.mdnsSeen.due(time.Now(), connected, n.gater.isBanned)...)
		for _, ai := range todo {
			n.spawn(func() {
				if err := n.dial(n.ctx, ai); err != nil && n.ctx.Err() == nil {
					n.log.Debug("p2p: dial failed", "peer", ai.ID, "err", err)
				}
			})
		}
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) dial(ctx context.Context, ai peer.AddrInfo) error {
	if n.gater.isBanned(ai.ID) {
		return errors.New("peer is on another genesis")
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	return n.host.Connect(ctx, ai)
}

// newTCPHost is the host of a real node: TCP on ListenHost:Port, with our
// gater and resource limits.
func newTCPHost(cfg Config, key crypto.PrivKey, g *gater) (host.Host, error) {
	listen, err := listenAddr(cfg.ListenHost, cfg.Port)
	if err != nil {
		return nil, err
	}
	rm, err := newResourceManager(cfg.Metrics != nil)
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	metricsOpt := libp2p.DisableMetrics()
	if cfg.Metrics != nil {
		metricsOpt = libp2p.PrometheusRegisterer(cfg.Metrics)
	}
	hst, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrs(listen),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionGater(g),
		libp2p.DisableRelay(),
		metricsOpt,
	)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("p2p: start host: %w", err)
	}
	return hst, nil
}

type mdnsNotifee struct{ n *Node }

func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	n := m.n
	if ai.ID == n.host.ID() || n.gater.isBanned(ai.ID) {
		return
	}
	n.mdnsSeen.found(ai, time.Now())
	if n.host.Network().Connectedness(ai.ID) == network.Connected {
		return
	}
	n.spawn(func() {
		if err := n.dial(n.ctx, ai); err != nil && n.ctx.Err() == nil {
			n.log.Debug("p2p: mdns dial failed", "peer", ai.ID, "err", err)
		}
	})
}

func listenAddr(host string, port int) (ma.Multiaddr, error) {
	if host == "" {
		host = "0.0.0.0"
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("p2p: bad port %d", port)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, fmt.Errorf("p2p: listen host %q is not an IP address", host)
	}
	proto := "ip4"
	if ip.To4() == nil {
		proto = "ip6"
	}
	return ma.NewMultiaddr("/" + proto + "/" + ip.String() + "/tcp/" + strconv.Itoa(port))
}

// addAddrInfos parses multiaddrs with /p2p/<id> into m, merging per peer.
func addAddrInfos(m map[peer.ID]peer.AddrInfo, addrs []string) error {
	for _, s := range addrs {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return fmt.Errorf("p2p: peer address %q: %w", s, err)
		}
		cur := m[ai.ID]
		cur.ID = ai.ID
		cur.Addrs = append(cur.Addrs, ai.Addrs...)
		m[ai.ID] = cur
	}
	return nil
}

// maxConns caps connections in all: far above any devnet on one machine,
// finite so that one host cannot exhaust the node.
const maxConns = 4096

// newResourceManager keeps the default memory and stream limits but raises
// the connection limits, which bite when many nodes share one address
// (8 per IP by default).
// newResourceManager builds the resource manager; with metrics it reports
// its usage to libp2p's rcmgr metrics (process-wide, on every registry
// libp2p was given).
func newResourceManager(metrics bool) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	conns := rcmgr.ResourceLimits{
		Conns:         maxConns,
		ConnsInbound:  maxConns,
		ConnsOutbound: maxConns,
		FD:            rcmgr.Unlimited,
	}
	partial := rcmgr.PartialLimitConfig{System: conns, Transient: conns}
	limits := partial.Build(scaling.AutoScale())
	opts := []rcmgr.Option{
		rcmgr.WithLimitPerSubnet(
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: 1024}},
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 56, ConnCount: 1024}},
		),
		rcmgr.WithConnRateLimiters(&rate.Limiter{}),
	}
	if !metrics {
		opts = append(opts, rcmgr.WithMetricsDisabled())
	}
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits), opts...)
}
