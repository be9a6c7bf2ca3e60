package main

import (
	"crypto/ed25519"
	"testing"

	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/testkit"
)

func TestAddressOfPeerID(t *testing.T) {
	priv := testkit.KeyN(7).Priv
	lpriv, err := lcrypto.UnmarshalEd25519PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(lpriv)
	if err != nil {
		t.Fatal(err)
	}
	got, err := addressOfPeerID(id.String())
	if want := chain.AddressOf(priv.Public().(ed25519.PublicKey)); err != nil || got != want {
		t.Fatalf("addressOfPeerID(%s) = %s, %v; want %s", id, got, err, want)
	}
	for _, bad := range []string{"", "12D3KooWNodeCarol", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", "0OIl"} {
		if a, err := addressOfPeerID(bad); err == nil {
			t.Errorf("addressOfPeerID(%q) = %s, want an error", bad, a)
		}
	}
}
