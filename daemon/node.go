// Package daemon is the posd node's wiring: Node opens the home, makes the
// parts (chain manager and store, pool, admission, forger, network, the
// API's backend) from their own packages, connects them and runs their
// loops. It owns no rule and no data of its own; docs/ARCHITECTURE.md
// says which room owns what.
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
	"sync"
	"sync/atomic"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/client"
	"github.com/poslab/posd/daemon/apibackend"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/firststart"
	"github.com/poslab/posd/daemon/forge"
	"github.com/poslab/posd/daemon/home"
	"github.com/poslab/posd/daemon/mempool"
	"github.com/poslab/posd/daemon/metrics"
	"github.com/poslab/posd/daemon/p2p"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/daemon/txadmit"
	"github.com/poslab/posd/internal/atomicfile"
	"github.com/poslab/posd/keystore"
)

// Version is the node's version, set by the posd binary.
var Version = "dev"

// GenesisParams are the parameters of a network made with --genesis; the
// construction lives in chain (chain.GenesisParams.Build).
type GenesisParams = chain.GenesisParams

// DefaultGenesisParams are the original's: lottery, one staker (v2 defaults).
func DefaultGenesisParams() GenesisParams { return chain.DefaultGenesisParams() }

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
	Stake         uint64 // then STAKE this much from it, once per home (daemon/firststart)
	Join          string // API URL of a node of the network to join
	NoJoin        bool   // join nobody by URL (devnet's first node, tests)
	Peers         []string
	MDNS          bool
	NoNetwork     bool // no p2p at all (tests of a single node)
	PoolLimit     int
	Byzantine     string // a byzantine behaviour, lab networks only (lab.go)
	// Checkpoint (--checkpoint): the chain must hold this block
	// (chainmgr.Config.Checkpoint); nil: no checkpoint.
	Checkpoint *chain.Checkpoint
	// NoVote turns this node's finality voter off (--vote=false): it
	// still pools and gossips others' votes and puts them in its blocks.
	NoVote bool
	// Sigs, if set, is a cache of verified signatures the node shares with
	// other nodes of the process (posd devnet); nil: its own.
	Sigs *chainmgr.SigCache
	// P2PHost, if set, makes the node's libp2p host instead of listening
	// on Host:P2PPort (an emulated network, daemon/wan).
	P2PHost p2p.HostFunc
	Logger  *slog.Logger
	// Now is the clock (tests move it); nil means time.Now.
	Now func() time.Time

	// wrapStore lets tests put a faulty disk under the chain manager.
	wrapStore func(chainmgr.Store) chainmgr.Store
}

// DefaultJoinURL is where a node with neither --genesis nor --join looks for
// its network, as the original's nodes looked for the node on port 10001.
const DefaultJoinURL = "http://127.0.0.1:5001"

// Node is a running posd: the wiring of its parts. What the API serves is
// API(); tools and tests in the process read the node through it too.
type Node struct {
	cfg   Config
	log   *slog.Logger
	key   *keystore.Key
	token string
	g     *chain.Genesis
	chain *chainmgr.Manager // the one owner of the chain and its store
	pool  *mempool.Pool
	admit *txadmit.Admitter // the one door to pool, for the API and gossip
	net   Network

	events <-chan chainmgr.Event // the chain's changes, for followChain
	forger *forge.Forger
	fin    *finality           // the vote pool and the voter (finality.go)
	api    *apibackend.Backend // what the HTTP API answers from

	// st is the store opened at start; the chain manager owns it, and the
	// node uses it only for read-only index queries (search, health).
	st *store.Store

	metrics nodeMetrics

	prom *metrics.Metrics // what /metrics serves (metrics.go)

	genesisHash chain.Hash

	httpSrv  *http.Server
	apiLn    net.Listener
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closeOne sync.Once
}

// nodeMetrics are the node's counters for /metrics (the chain's are the
// manager's Stats).
type nodeMetrics struct {
	blocksForged atomic.Int64
	evicted      atomic.Int64
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
	if err := home.Ensure(cfg.Home); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, prom: metrics.New()}

	var err error
	if n.key, err = home.LoadNodeKey(home.KeySpec{Home: cfg.Home, KeyFile: cfg.KeyFile, NewKey: cfg.NewKey}); err != nil {
		return nil, err
	}
	if n.token, err = home.LoadOrCreateToken(cfg.Home); err != nil {
		return nil, err
	}
	st, err := home.OpenStore(cfg.Home)
	if err != nil {
		return nil, err
	}
	if err := n.openChain(st); err != nil {
		st.Close()
		return nil, err
	}
	// A home whose parts disagree stops the node (daemon/home).
	if err := home.CheckGenesisFiles(cfg.Home, cfg.GenesisFile, n.g); err != nil {
		n.st.Close()
		return nil, err
	}
	home.WarnPermissions(n.log, cfg.Home, cfg.KeyFile)
	return n, nil
}

// openChain finds the genesis (stored chain, home/genesis.json, a new
// network, or the network to join), initialises the store and hands it to
// the chain manager, which owns it from then on.
func (n *Node) openChain(st *store.Store) error {
	g, err := n.resolveGenesis(st)
	if err != nil {
		return err
	}
	if err := st.Init(g); err != nil {
		return err
	}
	n.g = g
	n.genesisHash = g.Hash()
	n.st = st
	var cs chainmgr.Store = st
	if n.cfg.wrapStore != nil {
		cs = n.cfg.wrapStore(cs)
	}
	n.chain, err = chainmgr.New(chainmgr.Config{Genesis: g, Store: cs, Logger: n.log.With("component", "chain"), Now: n.cfg.Now, Metrics: n.prom.Chain, Sigs: n.cfg.Sigs, Checkpoint: n.cfg.Checkpoint})
	if err != nil {
		return err
	}
	n.events, _ = n.chain.Subscribe(chainEventBytes)
	n.pool = mempool.New(g, mempool.Config{Limit: n.cfg.PoolLimit, Sigs: n.chain.Verifier(), MinFee: g.MinFee})
	n.admit = txadmit.New(g, func() chain.LotView { return n.chain.Snapshot() }, n.pool)
	if err := n.setupFinality(); err != nil {
		return err
	}
	n.forger = forge.New(forge.Config{
		Chain: n.chain, Pool: n.pool, Key: n.key, Genesis: g, Log: n.log, Now: n.cfg.Now,
		Forged: &n.metrics.blocksForged, Evicted: &n.metrics.evicted,
		BlockSize: n.cfg.BlockSize, BlockInterval: n.cfg.BlockInterval,
		Lab: forge.Lab{Evidence: n.chain.EvidencePool().Pending}, Votes: n.fin,
	})
	n.fin.poke = n.forger.Poke
	n.registerMetrics()
	if err := n.setupLab(); err != nil {
		return err
	}
	var byz string
	if b := n.forger.Behaviour(); b != nil {
		byz = b.Name()
	}
	n.api = apibackend.New(apibackend.Parts{
		Genesis: g, Key: n.key, Chain: n.chain, Evidence: n.chain.EvidencePool(), Pool: n.pool, Admit: n.admit, Forger: n.forger,
		Store: st, Metrics: n.prom.Txs, Log: n.log, Version: Version, Byzantine: byz,
		SaveConfig: func(c rpc.Config) { home.SaveSettings(n.cfg.Home, c, n.log) },
	})
	return nil
}

func (n *Node) resolveGenesis(st *store.Store) (*chain.Genesis, error) {
	if ok, err := st.Initialized(); err != nil {
		return nil, err
	} else if ok {
		return st.Genesis()
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

// ParseExchangePolicy reads "open" or a comma-separated list of addresses.
func ParseExchangePolicy(s string) (chain.ExchangePolicy, error) { return chain.ParseExchangePolicy(s) }

// fetchGenesis downloads genesis.json from a node's API and checks it
// against the hash the node reports.
func fetchGenesis(base string) (*chain.Genesis, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := client.New(base)
	status, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	raw, err := c.GenesisJSON(ctx)
	if err != nil {
		return nil, err
	}
	g, err := chain.ParseGenesis(raw)
	if err != nil {
		return nil, err
	}
	if g.Hash() != status.GenesisHash {
		return nil, fmt.Errorf("genesis from %s hashes to %s but the node reports %s", base, g.Hash(), status.GenesisHash)
	}
	return g, nil
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
		n.forger.SetPublish(nw.PublishBlock)
		if p, ok := nw.(interface{ PublishVotes([]chain.Vote) }); ok {
			n.fin.publish = p.PublishVotes
		}
		n.api.SetNetwork(nw)
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
	home.WriteAPIURL(n.cfg.Home, n.APIURL(), n.log)
	n.wg.Add(4)
	go func() {
		defer n.wg.Done()
		n.followChain(n.events)
	}()
	go func() {
		defer n.wg.Done()
		rebroadcaster{pool: n.pool, net: n.net, log: n.log, slotMs: n.g.SlotMs}.run(n.ctx)
	}()
	go func() {
		defer n.wg.Done()
		if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("API server stopped", "err", err)
		}
	}()
	go func() {
		defer n.wg.Done()
		n.forger.Run(n.ctx)
	}()
	n.startLab() // lab.go
	n.log.Info("node started", "api", n.APIURL(), "address", string(n.key.Address()),
		"height", n.chain.Head().Height, "chain_id", n.g.ChainID)
	if n.cfg.Fund > 0 || n.cfg.Stake > 0 {
		n.wg.Add(1)
		fs := firststart.Config{Chain: n.chain, Submit: n.api, Address: n.key.Address(), ChainID: n.g.ChainID,
			Fund: n.cfg.Fund, Stake: n.cfg.Stake, Log: n.log}
		if n.net != nil {
			fs.Net = n.net
		}
		go func() {
			defer n.wg.Done()
			firststart.Run(n.ctx, fs, 30*time.Second)
		}()
	}
	return nil
}

// APIURL is the base URL the API listens on (after Start).
func (n *Node) APIURL() string { return n.cfg.apiScheme() + "://" + n.apiLn.Addr().String() }

// Address is the node key's address.
func (n *Node) Address() chain.Address { return n.key.Address() }

// Token is the admin token.
func (n *Node) Token() string { return n.token }

// ShutdownTimeout bounds Close, whatever is running: a stuck import or
// election is abandoned (the process's exit ends it).
const ShutdownTimeout = 5 * time.Second

// Close stops the API, the network and the forger, and closes the chain
// and its store, within ShutdownTimeout.
func (n *Node) Close() error {
	var err error
	n.closeOne.Do(func() {
		deadline := time.Now().Add(ShutdownTimeout)
		if n.cancel != nil {
			n.cancel()
		}
		if n.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout/3)
			if n.httpSrv.Shutdown(ctx) != nil {
				n.httpSrv.Close() // streams still open: cut them
			}
			cancel()
		}
		if n.net != nil {
			n.net.Close()
		}
		// Closing the chain ends followChain (its event channel closes).
		err = n.chain.CloseWithin(time.Until(deadline) - 100*time.Millisecond)
		done := make(chan struct{})
		go func() { n.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Until(deadline)):
			n.log.Warn("shutdown: the forger or the network handler is still busy; leaving it")
		}
		n.api.Close()
	})
	return err
}

// API is the HTTP API's backend over this node's parts: what the API
// serves, and what tools and tests in the process read the node through.
func (n *Node) API() *apibackend.Backend { return n.api }

// Home is the node's home directory.
func (n *Node) Home() string { return n.cfg.Home }
