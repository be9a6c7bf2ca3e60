package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/internal/atomicfile"
	"github.com/poslab/posd/keystore"
)

// DevnetConfig describes a local network of several nodes in one process.
type DevnetConfig struct {
	Home    string   // node i lives in Home/node<i>
	Nodes   int      // how many
	Stakes  []uint64 // stake of node i (default 1 each); every node also gets balance 1000
	Genesis GenesisParams
	Host    string
	APIPort int // node i listens on APIPort+i-1
	P2PPort int // and P2PPort+i-1
	// Byzantine gives node i (from 1) a byzantine behaviour (lab networks).
	Byzantine map[int]string
	// OwnSigCaches makes each node verify every signature itself. By
	// default the nodes share one cache of verified signatures: they share
	// one process and its cores, where a real network's machines each
	// verify a signature once on their own (chainmgr.SigCache).
	OwnSigCaches bool
	// NodeConfig, if set, adjusts each node's config before it opens (tests).
	NodeConfig func(i int, c *Config)
	Logger     *slog.Logger
}

// Devnet is a running local network. Node 1 made the genesis; the others
// joined it.
type Devnet struct {
	Nodes []*Node
}

// StartDevnet creates (or reopens) the homes, writes one genesis in which
// every node's key is funded and staked, and starts the nodes.
func StartDevnet(ctx context.Context, cfg DevnetConfig) (*Devnet, error) {
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("--nodes must be at least 1, got %d", cfg.Nodes)
	}
	if len(cfg.Stakes) > cfg.Nodes {
		return nil, fmt.Errorf("%d stakes given for %d nodes", len(cfg.Stakes), cfg.Nodes)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	homes := make([]string, cfg.Nodes)
	var allocs []chain.Allocation
	for i := range homes {
		homes[i] = filepath.Join(cfg.Home, fmt.Sprintf("node%d", i+1))
		if err := ensureHome(homes[i]); err != nil {
			return nil, err
		}
		k, _, err := keystore.LoadOrGenerate(filepath.Join(homes[i], KeyFile))
		if err != nil {
			return nil, err
		}
		stake := uint64(1)
		if i < len(cfg.Stakes) {
			stake = cfg.Stakes[i]
		}
		allocs = append(allocs, chain.Allocation{Address: k.Address(), Balance: 1000, Stake: stake})
	}
	if err := writeDevnetGenesis(cfg, homes, allocs); err != nil {
		return nil, err
	}
	d := &Devnet{}
	var sigs *chainmgr.SigCache
	if !cfg.OwnSigCaches {
		sigs = chainmgr.NewSigCache(0)
	}
	for i, home := range homes {
		c := Config{
			Home:          home,
			Host:          cfg.Host,
			APIPort:       portOf(cfg.APIPort, i),
			P2PPort:       portOf(cfg.P2PPort, i),
			BlockSize:     1,
			BlockInterval: time.Second,
			Logger:        cfg.Logger.With("node", i+1),
			Byzantine:     cfg.Byzantine[i+1],
			Sigs:          sigs,
		}
		if i > 0 {
			c.Join = d.Nodes[0].APIURL()
		} else {
			c.NoJoin = true
		}
		if cfg.NodeConfig != nil {
			cfg.NodeConfig(i+1, &c)
		}
		n, err := Open(c)
		if err == nil {
			if err = n.Start(ctx); err != nil {
				n.Close()
			}
		}
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("node %d: %w", i+1, err)
		}
		d.Nodes = append(d.Nodes, n)
	}
	return d, nil
}

// portOf is node i's port (from 0) when node 1 has base; base 0 gives
// every node 0, any free port (not 1, 2, ...).
func portOf(base, i int) int {
	if base == 0 {
		return 0
	}
	return base + i
}

// writeDevnetGenesis writes the same genesis.json into every home, unless
// node 1 already has one (a devnet restarted in the same home keeps its chain).
func writeDevnetGenesis(cfg DevnetConfig, homes []string, allocs []chain.Allocation) error {
	first := filepath.Join(homes[0], GenesisFile)
	data, err := os.ReadFile(first)
	if errors.Is(err, fs.ErrNotExist) {
		p := cfg.Genesis
		p.ChainID = firstNonEmpty(p.ChainID, "posd-devnet")
		g, err := p.Build(time.Now(), append(allocs, p.Allocations...))
		if err != nil {
			return err
		}
		if data, err = json.MarshalIndent(g, "", "  "); err != nil {
			return err
		}
		data = append(data, '\n')
	} else if err != nil {
		return err
	}
	for _, home := range homes {
		path := filepath.Join(home, GenesisFile)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if err := atomicfile.Replace(path, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every node.
func (d *Devnet) Close() {
	for i := len(d.Nodes) - 1; i >= 0; i-- {
		d.Nodes[i].Close()
	}
}
