package main

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/big"

	"github.com/poslab/posd/chain"
)

// A posd node's libp2p peer ID is its node key: for Ed25519 keys libp2p
// inlines the public key in the ID (an identity multihash of the protobuf
// PublicKey{Type: Ed25519, Data: key}). So poscli learns which staking
// addresses the node's peers run from GET /v1/peers, without libp2p.
var ed25519PeerIDPrefix = []byte{
	0x00, 0x24, // identity multihash, 36 bytes
	0x08, 0x01, // KeyType = Ed25519
	0x12, 0x20, // Data, 32 bytes
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// addressOfPeerID returns the address of the Ed25519 key inlined in a
// base58 peer ID ("12D3KooW..."), or an error for other IDs.
func addressOfPeerID(id string) (chain.Address, error) {
	raw, err := base58Decode(id)
	if err != nil {
		return "", err
	}
	if len(raw) != len(ed25519PeerIDPrefix)+ed25519.PublicKeySize || !bytes.HasPrefix(raw, ed25519PeerIDPrefix) {
		return "", errors.New("not an Ed25519 peer ID")
	}
	return chain.AddressOf(ed25519.PublicKey(raw[len(ed25519PeerIDPrefix):])), nil
}

func base58Decode(s string) ([]byte, error) {
	if s == "" || len(s) > 128 {
		return nil, errors.New("bad base58 length")
	}
	n := new(big.Int)
	radix := big.NewInt(58)
	for i := 0; i < len(s); i++ {
		d := bytes.IndexByte([]byte(base58Alphabet), s[i])
		if d < 0 {
			return nil, errors.New("not base58")
		}
		n.Mul(n, radix)
		n.Add(n, big.NewInt(int64(d)))
	}
	out := n.Bytes()
	for i := 0; i < len(s) && s[i] == '1'; i++ { // leading zero bytes
		out = append([]byte{0}, out...)
	}
	return out, nil
}
