package p2p

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// mdnsBook remembers the peers mDNS found, so the redial loop dials them
// again when a dial failed or their connection dropped. mDNS reports a
// peer once and then not again for its record's TTL (an hour with
// libp2p's zeroconf): without the book, one failed dial to a busy or
// restarting neighbour lost it for that long. Bounded: at most
// maxMDNSPeers entries, each dropped once it has been neither found nor
// connected for mdnsKeep.
type mdnsBook struct {
	mu      sync.Mutex
	entries map[peer.ID]mdnsEntry
}

type mdnsEntry struct {
	ai    peer.AddrInfo
	until time.Time
}

const (
	maxMDNSPeers = 64
	mdnsKeep     = 10 * time.Minute
)

// found records (or refreshes) a peer mDNS reported; a new peer beyond
// the bound is not recorded (it is still dialled once).
func (b *mdnsBook) found(ai peer.AddrInfo, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.entries == nil {
		b.entries = make(map[peer.ID]mdnsEntry)
	}
	if _, ok := b.entries[ai.ID]; !ok && len(b.entries) >= maxMDNSPeers {
		return
	}
	b.entries[ai.ID] = mdnsEntry{ai: ai, until: now.Add(mdnsKeep)}
}

// due returns the recorded peers to dial now: those not connected, not
// banned and not expired. Connected peers are kept for mdnsKeep more;
// banned and expired ones are dropped.
func (b *mdnsBook) due(now time.Time, connected, banned func(peer.ID) bool) []peer.AddrInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []peer.AddrInfo
	for id, e := range b.entries {
		switch {
		case banned(id) || now.After(e.until):
			delete(b.entries, id)
		case connected(id):
			e.until = now.Add(mdnsKeep)
			b.entries[id] = e
		default:
			out = append(out, e.ai)
		}
	}
	return out
}
