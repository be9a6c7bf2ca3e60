package p2p

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// TestNewHostSeam: with Config.NewHost two nodes run on mocknet hosts (no
// TCP), gossip a block and keep the key they were given; a NewHost that
// fails fails New with its error.
func TestNewHostSeam(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	var made []peer.ID
	mock := func(i int) HostFunc {
		return func(key crypto.PrivKey) (host.Host, error) {
			a, _ := ma.NewMultiaddr("/ip4/10.0.0." + string(rune('1'+i)) + "/tcp/4001")
			h, err := mn.AddPeer(key, a)
			if err != nil {
				return nil, err
			}
			for _, p := range made {
				if _, err := mn.LinkPeers(p, h.ID()); err != nil {
					return nil, err
				}
			}
			made = append(made, h.ID())
			return h, nil
		}
	}
	fa, fb := newFakeChain("g"), newFakeChain("g")
	a, err := New(context.Background(), Config{ChainID: "test", NewHost: mock(0)}, fa)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(context.Background(), Config{ChainID: "test", NewHost: mock(1), Peers: a.Addrs()}, fb)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.ID() != made[0].String() || len(a.Addrs()) != 1 || a.Addrs()[0] != "/ip4/10.0.0.1/tcp/4001/p2p/"+a.ID() {
		t.Fatalf("node a: id %s addrs %v, want the mock host's", a.ID(), a.Addrs())
	}
	waitFor(t, 10*time.Second, "peers", func() bool { return hasPeer(a, b.ID()) && hasPeer(b, a.ID()) })
	blk := fa.extend(1, 1)[0]
	waitFor(t, 10*time.Second, "gossip mesh", func() bool {
		a.PublishBlock(blk)
		return fb.height() == 1
	})

	boom := errors.New("no host today")
	_, err = New(context.Background(), Config{ChainID: "test", NewHost: func(crypto.PrivKey) (host.Host, error) { return nil, boom }}, newFakeChain("g"))
	if !errors.Is(err, boom) {
		t.Fatalf("New with a failing NewHost: %v, want its error", err)
	}
}
