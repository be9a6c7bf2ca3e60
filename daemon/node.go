// Package daemon is the posd node: it wires the store, the mempool, the
// forger, the peer-to-peer network and the HTTP API around one chain.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/election"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/mempool"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/internal/atomicfile"
	"github.com/poslab/posd/keystore"
)

// Version is the node's version, set by the posd binary.
var Version = "dev"

// GenesisParams are the parameters of a network made with --genesis.
type GenesisParams struct {
	ChainID     string
	Election    string
	SlotMs      int64
	MaxRank     uint32
	MaxBlockTxs int
	BlockReward uint64
	// Exchange is "open" or a comma-separated list of addresses.
	Exchange string
	// Allocations are added to the genesis node's own (stake 1, balance 1000).
	Allocations []chain.Allocation
	// Timestamp in unix ms; 0 means now.
	Timestamp int64
}

// DefaultGenesisParams are the original's: lottery, one staker.
func DefaultGenesisParams() GenesisParams {
	g := chain.DefaultGenesis()
	return GenesisParams{ChainID: "posd-local", Election: g.Election, SlotMs: g.SlotMs, MaxRank: g.MaxRank, MaxBlockTxs: g.MaxBlockTxs, Exchange: "open"}
}

// Config is everything `posd start` can set.
type Config struct {
	Home          string
	NewNetwork    bool   // --genesis: make a new network when home has none
	GenesisFile   string // --genesis-file: the genesis to use instead of generating one
	Genesis       GenesisParams
	Host          string    // P2P host, and the API's unless API.Host is set
	API           APIConfig // API exposure and limits (apilisten.go)
	NewKey        bool      // --new-key: make a node key although the home holds a chain
	APIPort       int
	P2PPort       int
	KeyFile       string // default <home>/node_key.pem
	BlockSize     int
	BlockInterval time.Duration
	Fund          uint64 // EXCHANGE this much to the node's key on first start
	Join          string // API URL of a node of the network to join
	NoJoin        bool   // join nobody by URL (devnet's first node, tests)
	Peers         []string
	MDNS          bool
	NoNetwork     bool // no p2p at all (tests of a single node)
	PoolLimit     int
	Logger        *slog.Logger
	// Now is the clock (tests move it); nil means time.Now.
	Now func() time.Time
}

// DefaultJoinURL is where a node with neither --genesis nor --join looks for
// its network, as the original's nodes looked for the node on port 10001.
const DefaultJoinURL = "http://127.0.0.1:5001"

// Node is a running posd.
type Node struct {
	cfg   Config
	log   *slog.Logger
	key   *keystore.Key
	token string
	g     *chain.Genesis
	alg   election.Algorithm
	st    *store.Store
	pool  *mempool.Pool
	net   Network

	// mu guards state and head: readers take it shared, block import exclusively.
	mu    sync.RWMutex
	state *chain.State
	head  *chain.Block

	elect electionCache

	blockSize     atomic.Int64
	blockInterval atomic.Int64 // ns

	wake   chan struct{}
	subsMu sync.Mutex
	subs   map[chan *chain.Block]struct{}

	metrics nodeMetrics
	ownMu   sync.Mutex            // serialises transactions signed with the node key
	halted  atomic.Pointer[error] // set when the node cannot go on safely

	genesisHashOnce sync.Once
	genesisHashVal  chain.Hash

	httpSrv  *http.Server
	apiLn    net.Listener
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closeOne sync.Once
}

// nodeMetrics are counters for /metrics.
type nodeMetrics struct {
	blocksImported atomic.Int64
	blocksForged   atomic.Int64
	txsCommitted   atomic.Int64
	txsRejected    atomic.Int64
	reorgs         atomic.Int64
	evicted        atomic.Int64
}

// Network is the peer-to-peer side as the node sees it (daemon/p2p).
type Network interface {
	ID() string
	Addrs() []string
	Peers() []rpc.Peer
	Connect(ctx context.Context, addrs []string) error
	PublishTxs(txs []chain.Transaction)
	PublishBlock(b *chain.Block)
	Close() error
}

// Open prepares a node from cfg: home, key, genesis, store, state. It does
// not listen yet; call Start.
func Open(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BlockSize <= 0 {
		cfg.BlockSize = 1
	}
	if cfg.BlockInterval <= 0 {
		cfg.BlockInterval = time.Second
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if err := ensureHome(cfg.Home); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), subs: make(map[chan *chain.Block]struct{})}
	n.blockSize.Store(int64(cfg.BlockSize))
	n.blockInterval.Store(int64(cfg.BlockInterval))

	var err error
	if n.key, err = loadNodeKey(cfg); err != nil {
		return nil, err
	}
	if n.token, err = loadOrCreateToken(cfg.Home); err != nil {
		return nil, err
	}
	if n.st, err = openStore(cfg.Home); err != nil {
		return nil, err
	}
	if err := n.openChain(); err != nil {
		n.st.Close()
		return nil, err
	}
	if err := n.checkHome(); err != nil {
		n.st.Close()
		return nil, err
	}
	return n, nil
}

// openChain finds the genesis (stored chain, home/genesis.json, a new
// network, or the network to join), initialises the store and loads state.
func (n *Node) openChain() error {
	g, err := n.resolveGenesis()
	if err != nil {
		return err
	}
	if err := n.st.Init(g); err != nil {
		return err
	}
	if n.alg, err = g.Algorithm(); err != nil {
		return err
	}
	n.g = g
	if n.state, err = n.st.LoadState(); err != nil {
		return err
	}
	if n.head, err = n.st.Head(); err != nil {
		return err
	}
	limit := n.cfg.PoolLimit
	n.pool = mempool.New(g, mempool.Config{Limit: limit})
	return nil
}

func (n *Node) resolveGenesis() (*chain.Genesis, error) {
	if ok, err := n.st.Initialized(); err != nil {
		return nil, err
	} else if ok {
		return n.st.Genesis()
	}
	path := filepath.Join(n.cfg.Home, GenesisFile)
	if data, err := os.ReadFile(path); err == nil {
		g, err := chain.ParseGenesis(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return g, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var g *chain.Genesis
	switch {
	case n.cfg.GenesisFile != "":
		data, err := os.ReadFile(n.cfg.GenesisFile)
		if err != nil {
			return nil, err
		}
		if g, err = chain.ParseGenesis(data); err != nil {
			return nil, fmt.Errorf("%s: %w", n.cfg.GenesisFile, err)
		}
	case n.cfg.NewNetwork:
		var err error
		if g, err = n.newGenesis(); err != nil {
			return nil, err
		}
		n.log.Info("created a new network", "chain_id", g.ChainID, "genesis", g.Hash().String())
	default:
		url := n.cfg.Join
		if url == "" {
			url = DefaultJoinURL
		}
		var err error
		if g, err = fetchGenesis(url); err != nil {
			return nil, fmt.Errorf("no chain in %s and joining %s failed: %w (start a new network with --genesis, or pass --join URL)", n.cfg.Home, url, err)
		}
		n.log.Info("joined a network", "via", url, "chain_id", g.ChainID, "genesis", g.Hash().String())
	}
	data, _ := json.MarshalIndent(g, "", "  ")
	if err := atomicfile.Replace(path, append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	return g, nil
}

func (n *Node) newGenesis() (*chain.Genesis, error) {
	own := []chain.Allocation{{Address: n.key.Address(), Balance: 1000, Stake: 1}}
	for _, a := range n.cfg.Genesis.Allocations {
		if a.Address == n.key.Address() {
			own[0] = a
			continue
		}
		own = append(own, a)
	}
	return n.cfg.Genesis.Build(n.cfg.Now(), own)
}

// Build makes the genesis these parameters describe, with these accounts;
// zero parameters take the defaults and a zero timestamp becomes now.
func (p GenesisParams) Build(now time.Time, allocs []chain.Allocation) (*chain.Genesis, error) {
	g := chain.DefaultGenesis()
	g.ChainID = firstNonEmpty(p.ChainID, DefaultGenesisParams().ChainID)
	g.Election = firstNonEmpty(p.Election, g.Election)
	if p.SlotMs > 0 {
		g.SlotMs = p.SlotMs
	}
	if p.MaxRank > 0 {
		g.MaxRank = p.MaxRank
	}
	if p.MaxBlockTxs > 0 {
		g.MaxBlockTxs = p.MaxBlockTxs
	}
	g.BlockReward = p.BlockReward
	g.Timestamp = p.Timestamp
	if g.Timestamp == 0 {
		g.Timestamp = now.UnixMilli()
	}
	var err error
	if g.Exchange, err = ParseExchangePolicy(firstNonEmpty(p.Exchange, "open")); err != nil {
		return nil, err
	}
	g.Allocations = allocs
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// ParseExchangePolicy reads "open" or a comma-separated list of addresses.
func ParseExchangePolicy(s string) (chain.ExchangePolicy, error) {
	if s == "open" {
		return chain.ExchangePolicy{Open: true}, nil
	}
	var p chain.ExchangePolicy
	for _, part := range strings.Split(s, ",") {
		a, err := chain.ParseAddress(strings.TrimSpace(part))
		if err != nil {
			return p, fmt.Errorf("exchange: %w", err)
		}
		p.Authorities = append(p.Authorities, a)
	}
	return p, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// fetchGenesis downloads genesis.json from a node's API and checks it
// against the hash the node reports.
func fetchGenesis(base string) (*chain.Genesis, error) {
	base = strings.TrimRight(base, "/")
	hc := &http.Client{Timeout: 10 * time.Second}
	var status struct {
		GenesisHash chain.Hash `json:"genesis_hash"`
	}
	if err := getJSON(hc, base+"/v1/status", &status); err != nil {
		return nil, err
	}
	resp, err := hc.Get(base + "/v1/genesis")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/genesis: %s", resp.Status)
	}
	g, err := chain.ParseGenesis(data)
	if err != nil {
		return nil, err
	}
	if g.Hash() != status.GenesisHash {
		return nil, fmt.Errorf("genesis from %s hashes to %s but the node reports %s", base, g.Hash(), status.GenesisHash)
	}
	return g, nil
}

func getJSON(hc *http.Client, url string, v any) error {
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// Start listens on the API port, starts the network (unless disabled) and
// the forger. It returns once everything listens.
func (n *Node) Start(ctx context.Context) error {
	n.ctx, n.cancel = context.WithCancel(ctx)
	if !n.cfg.NoNetwork {
		nw, err := startNetwork(n.ctx, n)
		if err != nil {
			n.cancel()
			return err
		}
		n.net = nw
	}
	ln, srv, err := n.listenAPI()
	if err != nil {
		n.cancel()
		if n.net != nil {
			n.net.Close()
		}
		return err
	}
	n.apiLn, n.httpSrv = ln, srv
	n.wg.Add(3)
	go func() {
		defer n.wg.Done()
		n.rebroadcastLoop(n.ctx)
	}()
	go func() {
		defer n.wg.Done()
		if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("API server stopped", "err", err)
		}
	}()
	go func() {
		defer n.wg.Done()
		n.forgeLoop(n.ctx)
	}()
	n.log.Info("node started", "api", n.APIURL(), "address", string(n.key.Address()),
		"height", n.Height(), "chain_id", n.g.ChainID)
	if n.cfg.Fund > 0 {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.waitForPeers(n.ctx, 30*time.Second)
			n.fundOnce()
		}()
	}
	return nil
}

// APIURL is the base URL the API listens on (after Start).
func (n *Node) APIURL() string { return n.apiScheme() + "://" + n.apiLn.Addr().String() }

// Address is the node key's address.
func (n *Node) Address() chain.Address { return n.key.Address() }

// Token is the admin token.
func (n *Node) Token() string { return n.token }

// Close stops the API, the network and the forger, and closes the store.
func (n *Node) Close() error {
	var err error
	n.closeOne.Do(func() {
		if n.cancel != nil {
			n.cancel()
		}
		if n.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			n.httpSrv.Shutdown(ctx)
			cancel()
		}
		if n.net != nil {
			n.net.Close()
		}
		n.wg.Wait()
		n.subsMu.Lock()
		for ch := range n.subs {
			close(ch)
			delete(n.subs, ch)
		}
		n.subsMu.Unlock()
		err = n.st.Close()
	})
	return err
}

// waitForPeers returns once the node has a peer, or after timeout, or at
// once without a network or for a staker. A transaction gossiped before any peer listens is
// lost, and a node that is no forger would keep it in its pool for ever.
func (n *Node) waitForPeers(ctx context.Context, timeout time.Duration) {
	n.mu.RLock()
	staker := n.state.Account(n.key.Address()).Stake > 0
	n.mu.RUnlock()
	if n.net == nil || staker { // a staker forges its own transactions in time
		return
	}
	deadline := time.Now().Add(timeout)
	for len(n.net.Peers()) == 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fundOnce buys cfg.Fund coins for the node key with an EXCHANGE on the
// node's first start only: the original minted again at every restart. The
// pool is not kept across restarts, so until the EXCHANGE is committed a
// restart submits it again (same id, so never twice on chain).
func (n *Node) fundOnce() {
	const metaKey = "funding_tx"
	if v, err := n.st.Meta(metaKey); err == nil {
		var tx chain.Transaction
		if json.Unmarshal(v, &tx) == nil {
			if _, _, err := n.st.TxLocation(tx.ID()); err == nil {
				return // committed
			}
			if _, err := n.SubmitTx(tx); err == nil {
				n.log.Info("funding the node key again: not committed before the restart", "tx", tx.ID().String())
			}
			return
		}
	}
	tx := chain.Transaction{Type: chain.TxExchange, ChainID: n.g.ChainID, To: n.key.Address(), Amount: n.cfg.Fund}
	tx, err := n.submitOwn(tx)
	if err != nil {
		n.log.Warn("could not fund the node key", "amount", n.cfg.Fund, "err", err)
		return
	}
	data, _ := json.Marshal(tx)
	if err := n.st.PutMeta(metaKey, data); err != nil {
		n.log.Warn("could not record funding", "err", err)
	}
	n.log.Info("funding the node key", "amount", n.cfg.Fund, "tx", tx.ID().String())
}

// submitOwn signs tx with the node key at the next pending nonce and
// submits it. ownMu keeps two calls from taking the same nonce.
func (n *Node) submitOwn(tx chain.Transaction) (chain.Transaction, error) {
	n.ownMu.Lock()
	defer n.ownMu.Unlock()
	n.mu.RLock()
	tx.Nonce = n.pool.PendingNonce(n.key.Address(), n.state) + 1
	n.mu.RUnlock()
	n.key.SignTx(&tx)
	_, err := n.SubmitTx(tx)
	return tx, err
}

func (n *Node) genesisHash() chain.Hash {
	n.genesisHashOnce.Do(func() { n.genesisHashVal = n.g.Hash() })
	return n.genesisHashVal
}

// Home is the node's home directory.
func (n *Node) Home() string { return n.cfg.Home }

// rebroadcastEvery is how often transactions that linger in the pool are
// gossiped again, and how long they must have lingered (a variable for tests).
var rebroadcastEvery = 15 * time.Second

// rebroadcastLoop gossips lingering pool transactions again. A transaction
// sent while this node had no peers was never heard by the forgers; a node
// with no stake would keep it for ever. Peers ignore what they already hold.
func (n *Node) rebroadcastLoop(ctx context.Context) {
	t := time.NewTicker(rebroadcastEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		oldest, ok := n.pool.Oldest()
		if !ok || n.net == nil || len(n.net.Peers()) == 0 || time.Since(oldest) < rebroadcastEvery {
			continue
		}
		txs := n.pool.All()
		if len(txs) > maxRebroadcast {
			txs = txs[:maxRebroadcast]
		}
		n.net.PublishTxs(txs)
		n.log.Debug("gossiped lingering pool transactions again", "count", len(txs))
	}
}

// maxRebroadcast bounds one rebroadcast (the oldest first).
const maxRebroadcast = 2000
