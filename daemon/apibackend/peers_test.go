package apibackend

import (
	"log/slog"
	"reflect"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// fakeNet is a Network with fixed peers.
type fakeNet struct{ peers []rpc.Peer }

func (f *fakeNet) ID() string                         { return "12D3KooWself" }
func (f *fakeNet) Addrs() []string                    { return nil }
func (f *fakeNet) Peers() []rpc.Peer                  { return f.peers }
func (f *fakeNet) PublishTxs(txs []chain.Transaction) {}

// TestPeersCarryRTT: the peers answer is the network's, round-trip times
// included; no network, or a network without peers, is an empty list.
func TestPeersCarryRTT(t *testing.T) {
	measured := []rpc.Peer{
		{ID: "12D3KooWa", Addrs: []string{"/ip4/10.0.0.2/tcp/4001"}, RTTMs: 82.44, RTTLastMs: 80.1},
		{ID: "12D3KooWb", Addrs: []string{"/ip4/10.1.0.2/tcp/4001"}}, // not measured yet
	}
	for _, tc := range []struct {
		name string
		net  Network
		want []rpc.Peer
	}{
		{"no network", nil, []rpc.Peer{}},
		{"no peers", &fakeNet{}, []rpc.Peer{}},
		{"peers with their RTT", &fakeNet{peers: measured}, measured},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(Parts{Genesis: chain.DefaultGenesis(), Log: slog.New(slog.DiscardHandler)})
			if tc.net != nil {
				b.SetNetwork(tc.net)
			}
			got := b.Peers()
			if got == nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Peers() = %#v, want %#v", got, tc.want)
			}
		})
	}
}
