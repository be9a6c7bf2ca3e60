// Package wan runs a devnet of real nodes (chain manager, pool, forger,
// gossip and sync: daemon.Node as `posd start` runs it) in one process over
// an emulated wide-area network: go-libp2p's mocknet joins the nodes' hosts
// by links with a latency and a bandwidth, and a thin wrapper on each
// stream adds jitter and loss. Links can be cut and restored on a schedule
// (partitions, a node going offline), and Recorder measures what the
// network did (propagation, forks, throughput) and checks its invariants.
//
// Latencies are round-trip times, as ping shows them; a link's one-way
// delay is half. Loss on a stream transport shows up as delay, not as lost
// bytes (TCP retransmits), so a lost segment holds the stream back by a
// retransmission timeout (see stream.go).
package wan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/poslab/posd/daemon"
	"github.com/poslab/posd/keystore"
)

// Link is what one link between two nodes does to traffic.
type Link struct {
	RTT       time.Duration // round-trip time; each direction gets half
	Jitter    time.Duration // extra delay per write, uniform in [0, Jitter)
	Loss      float64       // chance that a 1460-byte segment is lost (0..1)
	Bandwidth float64       // bytes per second, both directions together; 0 = unlimited
}

func (l Link) validate() error {
	switch {
	case l.RTT < 0 || l.Jitter < 0:
		return fmt.Errorf("latency and jitter must not be negative, got %v and %v", l.RTT, l.Jitter)
	case l.Loss < 0 || l.Loss >= 1:
		return fmt.Errorf("loss must be in [0, 1), got %g", l.Loss)
	case l.Bandwidth < 0:
		return fmt.Errorf("bandwidth must not be negative, got %g", l.Bandwidth)
	}
	return nil
}

// Topology places nodes in regions and derives each link from them.
type Topology struct {
	Regions int           // nodes are dealt round-robin: node i is in region i % Regions
	Intra   time.Duration // RTT inside a region
	// InterMin..InterMax are the RTTs between regions, spread evenly over
	// the region pairs in order (with 3 regions: 0-1 min, 0-2 middle, 1-2 max).
	InterMin, InterMax time.Duration
	Jitter             time.Duration
	Loss               float64
	Bandwidth          float64
}

// DefaultTopology is three regions, 20 ms inside, 80-250 ms between, 1%
// loss, 10 ms jitter and 100 Mbit/s links.
func DefaultTopology() Topology {
	return Topology{Regions: 3, Intra: 20 * time.Millisecond, InterMin: 80 * time.Millisecond, InterMax: 250 * time.Millisecond,
		Jitter: 10 * time.Millisecond, Loss: 0.01, Bandwidth: 12.5e6}
}

// Validate reports a topology that cannot be built.
func (t Topology) Validate() error {
	if t.Regions < 1 {
		return fmt.Errorf("regions must be at least 1, got %d", t.Regions)
	}
	if t.InterMax < t.InterMin {
		return fmt.Errorf("the largest latency between regions (%v) is below the smallest (%v)", t.InterMax, t.InterMin)
	}
	for _, d := range []time.Duration{t.Intra, t.InterMin} {
		if err := (Link{RTT: d, Jitter: t.Jitter, Loss: t.Loss, Bandwidth: t.Bandwidth}).validate(); err != nil {
			return err
		}
	}
	return nil
}

// Region is the region of node i (from 0).
func (t Topology) Region(i int) int { return i % t.Regions }

// Link is the link between nodes i and j.
func (t Topology) Link(i, j int) Link {
	l := Link{RTT: t.Intra, Jitter: t.Jitter, Loss: t.Loss, Bandwidth: t.Bandwidth}
	a, b := t.Region(i), t.Region(j)
	if a == b {
		return l
	}
	if a > b {
		a, b = b, a
	}
	pairs := t.Regions * (t.Regions - 1) / 2
	// index of pair (a, b) in the order (0,1), (0,2), ..., (1,2), ...
	idx := a*t.Regions - a*(a+1)/2 + (b - a - 1)
	l.RTT = t.InterMin
	if pairs > 1 {
		l.RTT += (t.InterMax - t.InterMin) * time.Duration(idx) / time.Duration(pairs-1)
	}
	return l
}

// Config describes an emulated network.
type Config struct {
	// Devnet is the network of nodes (Nodes, Stakes, Genesis, Home, Logger);
	// its ports and the nodes' joining are the emulator's.
	Devnet   daemon.DevnetConfig
	Topology Topology
	Seed     uint64 // jitter and loss draws
}

// Net is a running emulated network. Nodes are numbered from 0 here
// (node i is the devnet's node i+1).
type Net struct {
	Devnet *daemon.Devnet
	ctx    context.Context // the nodes'
	dc     daemon.DevnetConfig
	addrs  []string // node i's address with its peer id
	mn     mocknet.Mocknet
	topo   Topology
	seed   uint64
	ids    []peer.ID
	index  map[peer.ID]int

	mu        sync.Mutex
	overrides map[[2]int]Link
	cut       map[[2]int]bool // pairs whose link is down
	added     []bool          // node's host is on the mocknet
	hosts     map[int]*wanHost
	// live is the open streams between each pair (stream.go), reset when
	// the pair is cut.
	live    map[[2]int]map[*lossyStream]struct{}
	streams uint64 // streams wrapped so far
	refused uint64 // streams refused or reset across a cut, and reads and writes refused
}

// Start builds the nodes' homes and genesis (daemon.StartDevnet), puts each
// node's host on the mocknet and starts the nodes; every node is given
// every other as a configured peer, which it dials and re-dials itself.
func Start(ctx context.Context, cfg Config) (*Net, error) {
	if err := cfg.Topology.Validate(); err != nil {
		return nil, err
	}
	if cfg.Devnet.Nodes < 1 {
		return nil, fmt.Errorf("nodes must be at least 1, got %d", cfg.Devnet.Nodes)
	}
	if cfg.Devnet.Logger == nil {
		cfg.Devnet.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Net{
		mn: mocknet.New(), topo: cfg.Topology, seed: cfg.Seed,
		index: map[peer.ID]int{}, overrides: map[[2]int]Link{}, cut: map[[2]int]bool{},
		added: make([]bool, cfg.Devnet.Nodes), hosts: map[int]*wanHost{}, live: map[[2]int]map[*lossyStream]struct{}{},
	}
	dc := cfg.Devnet
	dc.P2PPort = 0 // no TCP: the links are emulated
	var addrs []string
	user := dc.NodeConfig
	var setupErr error
	dc.NodeConfig = func(i int, c *daemon.Config) {
		if addrs == nil && setupErr == nil {
			// StartDevnet made every node's key before the first node opens.
			addrs, setupErr = w.learnIDs(dc.Home, dc.Nodes)
		}
		c.Join, c.NoJoin, c.MDNS = "", true, false
		c.Peers = nil
		for j, a := range addrs {
			if j != i-1 {
				c.Peers = append(c.Peers, a)
			}
		}
		idx := i - 1
		c.P2PHost = func(key crypto.PrivKey) (host.Host, error) {
			if setupErr != nil {
				return nil, setupErr
			}
			return w.addHost(idx, key)
		}
		if user != nil {
			user(i, c)
		}
	}
	d, err := daemon.StartDevnet(ctx, dc)
	if err == nil && setupErr != nil {
		d.Close()
		err = setupErr
	}
	if err != nil {
		w.mn.Close()
		return nil, err
	}
	w.Devnet, w.dc, w.addrs, w.ctx = d, dc, addrs, ctx
	return w, nil
}

// learnIDs reads the nodes' keys (made by StartDevnet) and returns each
// node's emulated address with its peer id.
func (w *Net) learnIDs(home string, n int) ([]string, error) {
	var out []string
	for i := range n {
		k, _, err := keystore.LoadOrGenerate(filepath.Join(home, fmt.Sprintf("node%d", i+1), daemon.KeyFile))
		if err != nil {
			return nil, err
		}
		pk, err := crypto.UnmarshalEd25519PrivateKey(k.PrivateKey())
		if err != nil {
			return nil, err
		}
		id, err := peer.IDFromPrivateKey(pk)
		if err != nil {
			return nil, err
		}
		w.mu.Lock()
		w.ids = append(w.ids, id)
		w.index[id] = i
		w.mu.Unlock()
		out = append(out, w.addr(i).String()+"/p2p/"+id.String())
	}
	return out, nil
}

// AddNode starts one more node, in the next region of the round: a new
// home with the network's genesis and a new key (no stake), given every
// running node as a peer. It syncs the chain from them as any joining
// node does. It returns the node's number (from 0).
func (w *Net) AddNode() (int, error) {
	ctx := w.ctx
	i := len(w.Devnet.Nodes)
	home := filepath.Join(w.dc.Home, fmt.Sprintf("node%d", i+1))
	if err := os.MkdirAll(home, 0o700); err != nil {
		return 0, err
	}
	genesis, err := os.ReadFile(filepath.Join(w.dc.Home, "node1", daemon.GenesisFile))
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(home, daemon.GenesisFile), genesis, 0o644); err != nil {
		return 0, err
	}
	k, _, err := keystore.LoadOrGenerate(filepath.Join(home, daemon.KeyFile))
	if err != nil {
		return 0, err
	}
	pk, err := crypto.UnmarshalEd25519PrivateKey(k.PrivateKey())
	if err != nil {
		return 0, err
	}
	id, err := peer.IDFromPrivateKey(pk)
	if err != nil {
		return 0, err
	}
	w.mu.Lock()
	w.ids = append(w.ids, id)
	w.index[id] = i
	w.added = append(w.added, false)
	w.mu.Unlock()
	c := daemon.Config{
		Home: home, Host: w.dc.Host, BlockSize: 1, BlockInterval: time.Second,
		Logger: w.dc.Logger.With("node", i+1), NoJoin: true, Peers: slices.Clone(w.addrs),
		P2PHost: func(key crypto.PrivKey) (host.Host, error) { return w.addHost(i, key) },
	}
	w.addrs = append(w.addrs, w.addr(i).String()+"/p2p/"+id.String())
	n, err := daemon.Open(c)
	if err == nil {
		if err = n.Start(ctx); err != nil {
			n.Close()
		}
	}
	if err != nil {
		return 0, fmt.Errorf("node %d: %w", i+1, err)
	}
	w.Devnet.Nodes = append(w.Devnet.Nodes, n)
	return i, nil
}

// addr is node i's address on the emulated network: 10.<region>.x.y.
func (w *Net) addr(i int) ma.Multiaddr {
	a, _ := ma.NewMultiaddr(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", w.topo.Region(i), i/250, i%250+1))
	return a
}

// addHost puts node i on the mocknet, links it to the nodes already there
// and returns its host, wrapped for jitter and loss.
func (w *Net) addHost(i int, key crypto.PrivKey) (host.Host, error) {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if i >= len(w.ids) || w.ids[i] != id {
		return nil, fmt.Errorf("node %d: its key is not the one in its home", i+1)
	}
	h, err := w.mn.AddPeer(key, w.addr(i))
	if err != nil {
		return nil, err
	}
	w.added[i] = true
	for j := range w.ids {
		if j != i && w.added[j] && !w.cut[pair(i, j)] {
			if err := w.linkLocked(i, j); err != nil {
				return nil, err
			}
		}
	}
	// A dial that found the link just before a cut removed it can still
	// complete after the cut: such a connection is closed at once.
	h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if w.cutTo(i, c.RemotePeer()) {
			go c.Close()
		}
	}})
	wh := &wanHost{Host: h, w: w, self: i}
	w.hosts[i] = wh
	return wh, nil
}

func pair(i, j int) [2]int {
	if i > j {
		i, j = j, i
	}
	return [2]int{i, j}
}

// LinkOf is the link between nodes i and j now.
func (w *Net) LinkOf(i, j int) Link {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.linkOfLocked(i, j)
}

func (w *Net) linkOfLocked(i, j int) Link {
	if l, ok := w.overrides[pair(i, j)]; ok {
		return l
	}
	return w.topo.Link(i, j)
}

// linkState is the link between i and j now, and whether it is cut.
func (w *Net) linkState(i, j int) (Link, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.linkOfLocked(i, j), w.cut[pair(i, j)]
}

// cutTo reports whether node i's link to the node with id p is cut.
func (w *Net) cutTo(i int, p peer.ID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	j, ok := w.index[p]
	return ok && w.cut[pair(i, j)]
}

// untrack forgets a stream that was closed or reset.
func (w *Net) untrack(s *lossyStream) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.live[pair(s.a, s.b)], s)
}

// Refused is how many streams were refused or reset across a cut, and how
// many of their reads and writes were refused: what the cuts stopped.
func (w *Net) Refused() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.refused
}

func (w *Net) linkLocked(i, j int) error {
	l := w.linkOfLocked(i, j)
	ml, err := w.mn.LinkPeers(w.ids[i], w.ids[j])
	if err != nil {
		return err
	}
	ml.SetOptions(mocknet.LinkOptions{Latency: l.RTT / 2, Bandwidth: l.Bandwidth})
	return nil
}

// SetLink gives the link between i and j its own properties (e.g. a slow
// node), from its next write on.
func (w *Net) SetLink(i, j int, l Link) error {
	if err := l.validate(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.overrides[pair(i, j)] = l
	for _, ml := range w.mn.LinksBetweenPeers(w.ids[i], w.ids[j]) {
		ml.SetOptions(mocknet.LinkOptions{Latency: l.RTT / 2, Bandwidth: l.Bandwidth})
	}
	return nil
}

// host is node i's host (nil before it starts).
func (w *Net) host(i int) *wanHost {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hosts[i]
}

func (w *Net) peers() []peer.ID {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.ids)
}

// Partition cuts every link between nodes of different groups; nodes in no
// group keep their links. The cut is immediate and complete: from the
// moment it is made no stream opens, reads or writes across it (stream.go),
// the streams that were open across it are reset and the connections
// closed (as after a TCP timeout). The nodes find each other again by
// re-dialling after Heal.
func (w *Net) Partition(groups ...[]int) error {
	ids := w.peers()
	side := map[int]int{}
	for g, nodes := range groups {
		for _, i := range nodes {
			if i < 0 || i >= len(ids) {
				return fmt.Errorf("no node %d", i)
			}
			side[i] = g + 1
		}
	}
	var todo [][2]int
	for i := range ids {
		for j := i + 1; j < len(ids); j++ {
			if side[i] != 0 && side[j] != 0 && side[i] != side[j] {
				todo = append(todo, [2]int{i, j})
			}
		}
	}
	return w.cutPairs(todo)
}

// Offline cuts every link of node i: it keeps running, alone.
func (w *Net) Offline(i int) error {
	ids := w.peers()
	if i < 0 || i >= len(ids) {
		return fmt.Errorf("no node %d", i)
	}
	var todo [][2]int
	for j := range ids {
		if j != i {
			todo = append(todo, pair(i, j))
		}
	}
	return w.cutPairs(todo)
}

// cutPairs marks every pair cut at once (the streams check the mark on
// every open, read and write), then resets the streams that were open
// between them, removes their mocknet links and closes their connections.
func (w *Net) cutPairs(todo [][2]int) error {
	type ends struct{ a, b peer.ID }
	var open []*lossyStream
	var unlink []ends
	w.mu.Lock()
	for _, p := range todo {
		if w.cut[p] {
			continue
		}
		w.cut[p] = true
		for s := range w.live[p] {
			open = append(open, s)
		}
		delete(w.live, p)
		if w.added[p[0]] && w.added[p[1]] {
			unlink = append(unlink, ends{w.ids[p[0]], w.ids[p[1]]})
		}
	}
	w.refused += uint64(len(open))
	w.mu.Unlock()
	for _, s := range open {
		s.Stream.Reset()
	}
	var errs []error
	for _, e := range unlink {
		if err := w.mn.UnlinkPeers(e.a, e.b); err != nil {
			errs = append(errs, err)
		}
		// mocknet closes every connection between the two, both ways; a
		// connection that completes later is closed on arrival (addHost).
		if err := w.mn.DisconnectPeers(e.a, e.b); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Heal restores every cut link.
func (w *Net) Heal() error {
	return w.restore(func([2]int) bool { return true })
}

// Online restores the links of node i (cut by Offline or a partition).
func (w *Net) Online(i int) error {
	if i < 0 || i >= len(w.peers()) {
		return fmt.Errorf("no node %d", i)
	}
	return w.restore(func(p [2]int) bool { return p[0] == i || p[1] == i })
}

// restore restores the cut links of the pairs that which picks; the nodes
// re-dial each other on their own.
func (w *Net) restore(which func([2]int) bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for p := range w.cut {
		if !which(p) {
			continue
		}
		delete(w.cut, p)
		if w.added[p[0]] && w.added[p[1]] {
			if err := w.linkLocked(p[0], p[1]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Nodes is the running nodes, from 0.
func (w *Net) Nodes() []*daemon.Node { return w.Devnet.Nodes }

// Close stops every node and the mocknet.
func (w *Net) Close() {
	if w.Devnet != nil {
		w.Devnet.Close()
	}
	w.mn.Close()
}
