package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/devnet"
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
	// NoVote starts every node with its voter off (--vote=false).
	NoVote bool
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
// every node's key is funded and staked (daemon/devnet), and starts the
// nodes: node 1 first, the others joining it.
func StartDevnet(ctx context.Context, cfg DevnetConfig) (*Devnet, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	places, err := devnet.Prepare(devnet.Spec{Home: cfg.Home, Nodes: cfg.Nodes, Stakes: cfg.Stakes,
		Genesis: cfg.Genesis, APIPort: cfg.APIPort, P2PPort: cfg.P2PPort})
	if err != nil {
		return nil, err
	}
	d := &Devnet{}
	var sigs *chainmgr.SigCache
	if !cfg.OwnSigCaches {
		sigs = chainmgr.NewSigCache(0)
	}
	for i, p := range places {
		c := Config{
			Home:          p.Home,
			Host:          cfg.Host,
			APIPort:       p.APIPort,
			P2PPort:       p.P2PPort,
			BlockSize:     1,
			BlockInterval: time.Second,
			Logger:        cfg.Logger.With("node", i+1),
			Byzantine:     cfg.Byzantine[i+1],
			Sigs:          sigs,
			NoVote:        cfg.NoVote,
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

// Close stops every node.
func (d *Devnet) Close() {
	for i := len(d.Nodes) - 1; i >= 0; i-- {
		d.Nodes[i].Close()
	}
}
