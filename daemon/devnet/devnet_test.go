package devnet

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/home"
)

// TestPrepareRefuses: a network of no nodes, or with more stakes than
// nodes, is refused with what is wrong and nothing is made.
func TestPrepareRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"no nodes", Spec{Nodes: 0}, "--nodes must be at least 1, got 0"},
		{"more stakes than nodes", Spec{Nodes: 1, Stakes: []uint64{1, 2}}, "2 stakes given for 1 nodes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Home = filepath.Join(t.TempDir(), "net")
			if _, err := Prepare(tc.spec); err == nil || err.Error() != tc.want {
				t.Fatalf("Prepare = %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(tc.spec.Home); !os.IsNotExist(err) {
				t.Fatalf("home made for a refused network: %v", err)
			}
		})
	}
}

// TestPrepareOneGenesis: every home gets the same genesis, funding and
// staking every node's key; ports count up from the bases (0 stays 0); a
// second Prepare in the same home keeps the genesis.
func TestPrepareOneGenesis(t *testing.T) {
	params := chain.DefaultGenesisParams()
	params.ChainID = "" // the devnet's own
	spec := Spec{Home: t.TempDir(), Nodes: 3, Stakes: []uint64{5}, Genesis: params, APIPort: 7000}
	nodes, err := Prepare(spec)
	if err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(nodes[0].Home, home.GenesisFile))
	if err != nil {
		t.Fatal(err)
	}
	g, err := chain.ParseGenesis(first)
	if err != nil {
		t.Fatal(err)
	}
	if g.ChainID != "posd-devnet" {
		t.Errorf("chain id %q, want posd-devnet", g.ChainID)
	}
	for i, n := range nodes {
		if n.APIPort != 7000+i || n.P2PPort != 0 || !strings.HasSuffix(n.Home, "node"+string(rune('1'+i))) {
			t.Errorf("node %d: %+v", i+1, n)
		}
		data, err := os.ReadFile(filepath.Join(n.Home, home.GenesisFile))
		if err != nil || !bytes.Equal(data, first) {
			t.Errorf("node %d: genesis differs (%v)", i+1, err)
		}
	}
	stakes := map[uint64]int{}
	for _, a := range g.Allocations {
		if a.Balance == 1000 {
			stakes[a.Stake]++
		}
	}
	if stakes[5] != 1 || stakes[1] != 2 {
		t.Errorf("allocations %+v, want one node with stake 5 and two with 1", g.Allocations)
	}
	if _, err := Prepare(spec); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(nodes[2].Home, home.GenesisFile))
	if !bytes.Equal(again, first) {
		t.Fatal("a second Prepare wrote another genesis")
	}
}
