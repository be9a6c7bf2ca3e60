package p2p

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/poslab/posd/chain"
)

const (
	// statusVersion is the wire version of the node's protocols: 2 since
	// blocks and evidence moved to BlockProtocol; 3 since transaction
	// batches are at most 512 KiB (a version-2 node's batches of up to
	// 1 MiB would be refused by the router) and gaps are filled over
	// TxFillProtocol. Peers of another version would connect and lose
	// each other's messages, so they are told apart here.
	statusVersion = 3
	statusLen     = 1 + 32 + 8 + 32
)

// status is what each side of /posd/status/1 sends.
type status struct {
	genesis chain.Hash
	height  uint64
	head    chain.Hash
}

func (s status) encode() []byte {
	out := make([]byte, 0, statusLen)
	out = append(out, statusVersion)
	out = append(out, s.genesis[:]...)
	out = binary.BigEndian.AppendUint64(out, s.height)
	return append(out, s.head[:]...)
}

func decodeStatus(b []byte) (status, error) {
	var s status
	if len(b) != statusLen {
		return s, errors.New("malformed status")
	}
	if b[0] != statusVersion {
		return s, fmt.Errorf("peer speaks protocol version %d, this node %d: run the same posd release", b[0], statusVersion)
	}
	copy(s.genesis[:], b[1:33])
	s.height = binary.BigEndian.Uint64(b[33:41])
	copy(s.head[:], b[41:73])
	return s, nil
}

func (n *Node) localStatus() status {
	height, head := n.h.Head()
	return status{genesis: n.genesis, height: height, head: head}
}

// errWrongGenesis is returned by the handshake with a peer of another network.
var errWrongGenesis = errors.New("peer is on another genesis")

// handshake asks p for its status (sending ours) and records the result.
func (n *Node) handshake(ctx context.Context, p peer.ID) (status, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	s, err := n.host.NewStream(network.WithNoDial(ctx, "status of a connected peer"), p, StatusProtocol)
	if err != nil {
		return status{}, err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(statusTimeout))
	if _, err := s.Write(n.localStatus().encode()); err != nil {
		s.Reset()
		return status{}, err
	}
	s.CloseWrite()
	buf := make([]byte, statusLen)
	if _, err := io.ReadFull(s, buf); err != nil {
		s.Reset()
		return status{}, err
	}
	st, err := decodeStatus(buf)
	if err != nil {
		s.Reset()
		if buf[0] != statusVersion {
			n.log.Warn("p2p: peer runs another protocol version", "peer", p.String(), "err", err.Error())
		}
		n.offence(p, "status", err)
		return status{}, err
	}
	return st, n.observe(p, st, 0)
}

// serveStatus answers a status request with ours.
func (n *Node) serveStatus(s network.Stream) {
	defer s.Close()
	s.SetDeadline(time.Now().Add(statusTimeout))
	buf := make([]byte, statusLen)
	if _, err := io.ReadFull(s, buf); err != nil {
		s.Reset()
		return
	}
	st, err := decodeStatus(buf)
	if err != nil {
		s.Reset()
		return
	}
	if _, err := s.Write(n.localStatus().encode()); err != nil {
		s.Reset()
		return
	}
	// On another genesis, give the peer a moment to read our status (and log
	// why) before we hang up.
	n.observe(s.Conn().RemotePeer(), st, time.Second)
}

// observe records the status of p: a peer on another genesis is dropped and
// refused from now on; a peer ahead of us is synced from.
// A peer on another genesis is disconnected after closeDelay.
func (n *Node) observe(p peer.ID, st status, closeDelay time.Duration) error {
	if st.genesis != n.genesis {
		first := n.gater.ban(p)
		n.mu.Lock()
		delete(n.peers, p)
		n.mu.Unlock()
		n.host.Peerstore().ClearAddrs(p)
		if closeDelay == 0 {
			n.host.Network().ClosePeer(p)
		} else {
			n.spawn(func() {
				t := time.NewTimer(closeDelay)
				defer t.Stop()
				select {
				case <-t.C:
					n.host.Network().ClosePeer(p)
				case <-n.ctx.Done():
				}
			})
		}
		if first {
			n.log.Warn("p2p: dropping peer on another genesis", "peer", p.String(),
				"our_genesis", n.genesis.String(), "peer_genesis", st.genesis.String())
		}
		return fmt.Errorf("%w: %s", errWrongGenesis, st.genesis)
	}
	if n.host.Network().Connectedness(p) != network.Connected {
		return errors.New("peer disconnected")
	}
	n.mu.Lock()
	ps, known := n.peers[p]
	if !known {
		ps = &peerState{}
		n.peers[p] = ps
	}
	ps.height, ps.head = st.height, st.head
	n.mu.Unlock()
	if !known {
		n.log.Info("p2p: peer joined", "peer", p.String(), "height", st.height)
		// Measure it now, not at the next round of pings.
		n.pingPeer(p)
	}
	// A higher peer has blocks we lack; a peer at our height with another
	// head has the other side of a fork that fork choice must settle.
	if ours, ourHead := n.h.Head(); st.height > ours || st.height == ours && st.head != ourHead {
		n.wakeSync()
	}
	return nil
}

// gater refuses connections from peers found on another genesis (for
// good) and from peers that kept breaking rules (for a while).
type gater struct {
	mu     sync.RWMutex
	banned map[peer.ID]time.Time // zero time: for good
}

func (g *gater) ban(p peer.ID) (first bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if until, ok := g.banned[p]; ok && until.IsZero() {
		return false
	}
	g.banned[p] = time.Time{}
	return true
}

// banFor bans p until the given time (not shortening a longer ban); true
// when p was not banned before.
func (g *gater) banFor(p peer.ID, until time.Time) (first bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	cur, ok := g.banned[p]
	if ok && (cur.IsZero() || cur.After(until)) {
		return false
	}
	g.banned[p] = until
	return !ok || time.Now().After(cur)
}

func (g *gater) isBanned(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	until, ok := g.banned[p]
	return ok && (until.IsZero() || time.Now().Before(until))
}

func (g *gater) InterceptPeerDial(p peer.ID) bool                                { return !g.isBanned(p) }
func (g *gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool                    { return true }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool                     { return true }
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.isBanned(p)
}
