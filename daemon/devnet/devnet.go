// Package devnet prepares a local network of several nodes in one process
// (posd devnet): each node's home and key, one genesis in which every
// node's key is funded and staked, written into every home, and each
// node's ports. Opening and starting the nodes, node 1 first and the others
// joining it, is the daemon's wiring (daemon.StartDevnet).
package devnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/home"
	"github.com/poslab/posd/internal/atomicfile"
	"github.com/poslab/posd/keystore"
)

// Spec describes the network.
type Spec struct {
	Home    string   // node i lives in Home/node<i>
	Nodes   int      // how many
	Stakes  []uint64 // stake of node i (default 1 each); every node also gets balance 1000
	Genesis chain.GenesisParams
	APIPort int // node i listens on APIPort+i-1
	P2PPort int // and P2PPort+i-1
}

// Node is one node's place in the network.
type Node struct {
	Home    string
	APIPort int
	P2PPort int
}

// Prepare creates (or reopens) the homes and keys and writes one genesis
// in which every node's key is funded and staked, unless node 1 already has
// one (a devnet restarted in the same home keeps its chain).
func Prepare(s Spec) ([]Node, error) {
	if s.Nodes < 1 {
		return nil, fmt.Errorf("--nodes must be at least 1, got %d", s.Nodes)
	}
	if len(s.Stakes) > s.Nodes {
		return nil, fmt.Errorf("%d stakes given for %d nodes", len(s.Stakes), s.Nodes)
	}
	homes := make([]string, s.Nodes)
	var allocs []chain.Allocation
	for i := range homes {
		homes[i] = filepath.Join(s.Home, fmt.Sprintf("node%d", i+1))
		if err := home.Ensure(homes[i]); err != nil {
			return nil, err
		}
		k, _, err := keystore.LoadOrGenerate(filepath.Join(homes[i], home.KeyFile))
		if err != nil {
			return nil, err
		}
		stake := uint64(1)
		if i < len(s.Stakes) {
			stake = s.Stakes[i]
		}
		allocs = append(allocs, chain.Allocation{Address: k.Address(), Balance: 1000, Stake: stake})
	}
	if err := writeGenesis(s, homes, allocs); err != nil {
		return nil, err
	}
	nodes := make([]Node, len(homes))
	for i, dir := range homes {
		nodes[i] = Node{Home: dir, APIPort: portOf(s.APIPort, i), P2PPort: portOf(s.P2PPort, i)}
	}
	return nodes, nil
}

// portOf is node i's port (from 0) when node 1 has base; base 0 gives
// every node 0, any free port (not 1, 2, ...).
func portOf(base, i int) int {
	if base == 0 {
		return 0
	}
	return base + i
}

// writeGenesis writes the same genesis.json into every home, unless
// node 1 already has one (a devnet restarted in the same home keeps its chain).
func writeGenesis(s Spec, homes []string, allocs []chain.Allocation) error {
	first := filepath.Join(homes[0], home.GenesisFile)
	data, err := os.ReadFile(first)
	if errors.Is(err, fs.ErrNotExist) {
		p := s.Genesis
		if p.ChainID == "" {
			p.ChainID = "posd-devnet"
		}
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
	for _, dir := range homes {
		path := filepath.Join(dir, home.GenesisFile)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if err := atomicfile.Replace(path, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
