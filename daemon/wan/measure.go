package wan

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon"
	"github.com/poslab/posd/daemon/p2p"
)

// Recorder notes when each node imported each block (daemon.Node's block
// subscription: every block added to its main chain, reorgs included).
type Recorder struct {
	nodes []*daemon.Node
	added []time.Time // when each node's recording began
	start time.Time

	mu      sync.Mutex
	seen    map[chain.Hash][]time.Time // per node; zero: not (yet) seen
	height  map[chain.Hash]uint64
	changed chan struct{} // signalled on every import
	fin     finState
	ph      phaseState // finality.go: where the time to final goes

	stop []func()
	wg   sync.WaitGroup
}

// Record starts recording the nodes' imports.
func Record(nodes []*daemon.Node) *Recorder {
	r := &Recorder{start: time.Now(), seen: map[chain.Hash][]time.Time{}, height: map[chain.Hash]uint64{}, changed: make(chan struct{}, 1)}
	r.fin.finalOf = map[uint64]chain.Hash{}
	r.fin.sent = map[txKey]sentTx{}
	if len(nodes) > 0 {
		r.ph.init(nodes[0].API().Genesis())
		r.stop = append(r.stop, p2p.TraceVotes(r.votesTaken))
	}
	for _, n := range nodes {
		r.Add(n)
	}
	return r
}

// Add records one more node's imports and finality (a node that joined).
func (r *Recorder) Add(n *daemon.Node) {
	ch, cancel := n.API().SubscribeBlocks()
	fch, fcancel := n.API().SubscribeFinality()
	pid, addr := n.API().Status().PeerID, n.Address()
	r.mu.Lock()
	i := len(r.nodes)
	r.nodes = append(r.nodes, n)
	r.added = append(r.added, time.Now())
	r.stop = append(r.stop, cancel, fcancel)
	r.fin.finalH = append(r.fin.finalH, 0)
	r.fin.marks = append(r.fin.marks, nil)
	if r.ph.peer != nil {
		r.ph.peer[pid] = i
		r.ph.addr[addr] = i
	}
	r.mu.Unlock()
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		for b := range ch {
			r.noteBlock(b)
			h := b.Hash()
			if r.note(i, h, b.Height, time.Now()) {
				r.confirmRevert(i, n, h, b.Height)
			}
		}
	}()
	go func() {
		defer r.wg.Done()
		if fch != nil {
			r.followFinality(i, n, fch)
		}
	}()
}

// Nodes is the nodes recorded.
func (r *Recorder) Nodes() []*daemon.Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.nodes)
}

// note records node i's import of h; suspect: it may have reverted a
// final block (checkImport).
func (r *Recorder) note(i int, h chain.Hash, height uint64, at time.Time) (suspect bool) {
	r.mu.Lock()
	suspect = r.checkImport(i, h, height)
	r.height[h] = height
	ts := r.seen[h]
	if len(ts) < len(r.nodes) {
		ts = append(ts, make([]time.Time, len(r.nodes)-len(ts))...)
		r.seen[h] = ts
	}
	if ts[i].IsZero() {
		ts[i] = at
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return suspect
}

// Stop ends the recording.
func (r *Recorder) Stop() {
	r.mu.Lock()
	stop := slices.Clone(r.stop)
	r.mu.Unlock()
	for _, f := range stop {
		f()
	}
	r.wg.Wait()
}

// Agreed reports whether every node has the same head.
func Agreed(nodes []*daemon.Node) bool {
	h := nodes[0].API().Head().Hash()
	for _, n := range nodes[1:] {
		if n.API().Head().Hash() != h {
			return false
		}
	}
	return true
}

// WaitAgree waits until every node has the same head, and returns how long
// that took.
func (r *Recorder) WaitAgree(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Also look now and then: an agreement can come from the last import
	// before the recorder's signal was drained.
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		nodes := r.Nodes()
		if Agreed(nodes) {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("nodes did not agree on a head within %v: heights %v", timeout, heights(nodes))
		case <-r.changed:
		case <-t.C:
		}
	}
}

func heights(nodes []*daemon.Node) []uint64 {
	out := make([]uint64, len(nodes))
	for i, n := range nodes {
		out[i] = n.API().Height()
	}
	return out
}

// WaitCommon waits until some block that was first imported after since is
// on every node's main chain: the network builds on one chain again (after
// a heal, say), although under load the heads themselves rarely match at
// one instant. It returns how long that took from since.
func (r *Recorder) WaitCommon(ctx context.Context, since time.Time, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		nodes := r.Nodes()
		if r.common(nodes, since) {
			return time.Since(since), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(since), fmt.Errorf("no block made after %v is on every node's main chain within %v: heights %v",
				since.Format("15:04:05.000"), timeout, heights(nodes))
		case <-r.changed:
		case <-t.C:
		}
	}
}

// common reports whether a block first imported after since, imported by
// every node, is on every node's main chain now.
func (r *Recorder) common(nodes []*daemon.Node, since time.Time) bool {
	type cand struct {
		h      chain.Hash
		height uint64
	}
	var cands []cand
	r.mu.Lock()
	for h, ts := range r.seen {
		if len(ts) < len(nodes) {
			continue
		}
		all := true
		for _, t := range ts[:len(nodes)] {
			if t.IsZero() || t.Before(since) {
				all = false
				break
			}
		}
		if all {
			cands = append(cands, cand{h, r.height[h]})
		}
	}
	r.mu.Unlock()
	for _, c := range cands {
		onAll := true
		for _, n := range nodes {
			if b, err := n.API().BlockByHeight(c.height); err != nil || b.Hash() != c.h {
				onAll = false
				break
			}
		}
		if onAll {
			return true
		}
	}
	return false
}

// Report is what a run measured.
type Report struct {
	Nodes    int
	Duration time.Duration // from Record to Report
	Height   uint64        // of the common head
	// Blocks is every block some node had on its main chain at some time;
	// OffMain of them are not on the final main chain.
	Blocks, OffMain int
	// Propagation of main-chain blocks: for each block and each node, the
	// time from the block's first import anywhere (its forger) to that
	// node's import.
	PropP50, PropP99, PropMax time.Duration
	Txs                       int     // transactions committed in blocks imported during the run
	TxPerSec                  float64 // Txs / Duration
	Agree                     time.Duration
}

// OffMainShare is the share of blocks that ended off the main chain.
func (r Report) OffMainShare() float64 {
	if r.Blocks == 0 {
		return 0
	}
	return float64(r.OffMain) / float64(r.Blocks)
}

func (r Report) String() string {
	return fmt.Sprintf("nodes %d, %v, height %d, blocks %d, off main chain %d (%.1f%%), propagation p50 %v p99 %v max %v, %d txs committed (%.1f tx/s), agreement after %v",
		r.Nodes, r.Duration.Round(time.Millisecond), r.Height, r.Blocks, r.OffMain, 100*r.OffMainShare(),
		r.PropP50.Round(time.Millisecond), r.PropP99.Round(time.Millisecond), r.PropMax.Round(time.Millisecond),
		r.Txs, r.TxPerSec, r.Agree.Round(time.Millisecond))
}

// Report measures the run so far against node 0's main chain; call it once
// the nodes agree.
func (r *Recorder) Report() (Report, error) {
	nodes := r.Nodes()
	n0 := nodes[0]
	head := n0.API().Head()
	main := map[chain.Hash]*chain.Block{}
	for from := uint64(1); from <= head.Height; {
		bs, err := n0.API().Blocks(from, 500)
		if err != nil {
			return Report{}, err
		}
		if len(bs) == 0 {
			break
		}
		for _, b := range bs {
			main[b.Hash()] = b
		}
		from = bs[len(bs)-1].Height + 1
	}
	rep := Report{Nodes: len(nodes), Duration: time.Since(r.start), Height: head.Height}
	var props []time.Duration
	r.mu.Lock()
	for h, ts := range r.seen {
		rep.Blocks++
		b, ok := main[h]
		if !ok {
			rep.OffMain++
			continue
		}
		rep.Txs += len(b.Transactions)
		first := time.Time{}
		for _, t := range ts {
			if !t.IsZero() && (first.IsZero() || t.Before(first)) {
				first = t
			}
		}
		for i, t := range ts {
			// A block older than a node's recording (a node that joined
			// and synced the chain) did not propagate to it.
			if !t.IsZero() && t != first && !first.Before(r.added[i]) {
				props = append(props, t.Sub(first))
			}
		}
	}
	r.mu.Unlock()
	slices.Sort(props)
	if len(props) > 0 {
		rep.PropP50 = props[len(props)/2]
		rep.PropP99 = props[min(len(props)-1, len(props)*99/100)]
		rep.PropMax = props[len(props)-1]
	}
	rep.TxPerSec = float64(rep.Txs) / rep.Duration.Seconds()
	return rep, nil
}

// CheckOneChain reports nodes whose main chain differs from node 0's at
// the lowest head among them: one chain, although a block forged this
// instant may not have reached every node yet.
func CheckOneChain(nodes []*daemon.Node) error {
	low := nodes[0].API().Height()
	for _, n := range nodes[1:] {
		low = min(low, n.API().Height())
	}
	want, err := nodes[0].API().BlockByHeight(low)
	if err != nil {
		return fmt.Errorf("node 0: block %d: %w", low, err)
	}
	var errs []error
	for i, n := range nodes[1:] {
		b, err := n.API().BlockByHeight(low)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %d: block %d: %w", i+1, low, err))
		} else if b.Hash() != want.Hash() {
			errs = append(errs, fmt.Errorf("node %d has %s at height %d, node 0 %s", i+1, b.Hash(), low, want.Hash()))
		}
	}
	return errors.Join(errs...)
}

// CheckCoins checks, on every node, that the coins in all accounts
// (balances and stakes) are the genesis allocations plus the block reward
// of every block plus what EXCHANGE minted, less what slashing burnt: fees
// move to forgers, transfers and stakes move coins between accounts.
func CheckCoins(nodes []*daemon.Node) error {
	var errs []error
	for i, n := range nodes {
		if err := checkCoins(n); err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func checkCoins(n *daemon.Node) error {
	// The accounts and the head are read apart: a block imported between
	// the two reads is read again.
	var err error
	for range 10 {
		var moved bool
		if moved, err = checkCoinsOnce(n); !moved {
			return err
		}
	}
	return err
}

func checkCoinsOnce(n *daemon.Node) (moved bool, err error) {
	g := n.API().Genesis()
	var want uint64
	for _, a := range g.Allocations {
		want += a.Balance + a.Stake
	}
	head := n.API().Head()
	want += g.BlockReward * head.Height
	evidence := 0
	for from := uint64(1); from <= head.Height; {
		bs, err := n.API().Blocks(from, 500)
		if err != nil {
			return false, err
		}
		if len(bs) == 0 {
			break
		}
		for _, b := range bs {
			evidence += len(b.Evidence)
			for _, tx := range b.Transactions {
				if tx.Type == chain.TxExchange {
					want += tx.Amount
				}
			}
		}
		from = bs[len(bs)-1].Height + 1
	}
	var have uint64
	for _, a := range n.API().Accounts() {
		have += a.Balance + a.Stake
	}
	if n.API().Head().Hash() != head.Hash() {
		return true, fmt.Errorf("the head kept moving while the coins were counted")
	}
	if have != want {
		return false, fmt.Errorf("accounts hold %d coins at height %d, the rules give %d (%d evidence records slashed)", have, head.Height, want, evidence)
	}
	return false, nil
}

// Load sends TRANSFERs from funded accounts, each account to its own node,
// at a steady rate until its context ends.
type Load struct {
	Submitted, Failed atomic.Int64
	wg                sync.WaitGroup
}

// LoadAccount is a funded key that Load sends from.
type LoadAccount struct {
	Key ed25519.PrivateKey
}

// Address is the account's address.
func (a LoadAccount) Address() chain.Address {
	return chain.AddressOf(a.Key.Public().(ed25519.PublicKey))
}

// NewLoadAccounts makes n keys and the genesis allocations that fund them.
func NewLoadAccounts(n int, balance uint64) ([]LoadAccount, []chain.Allocation) {
	var accs []LoadAccount
	var allocs []chain.Allocation
	for range n {
		_, k, _ := ed25519.GenerateKey(nil)
		a := LoadAccount{Key: k}
		accs = append(accs, a)
		allocs = append(allocs, chain.Allocation{Address: a.Address(), Balance: balance})
	}
	return accs, allocs
}

// StartLoad sends perNode transfers per second from accs[i] to node
// i % len(nodes), to the next account, until ctx ends; Wait waits for it.
// rec, if not nil, is told of every transfer a node took (Recorder.Sent),
// with the time it was handed to the node.
func StartLoad(ctx context.Context, nodes []*daemon.Node, accs []LoadAccount, perNode float64, rec *Recorder) *Load {
	l := &Load{}
	if perNode <= 0 {
		return l
	}
	for i, a := range accs {
		ni := i % len(nodes)
		n := nodes[ni]
		to := accs[(i+1)%len(accs)].Address()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			t := time.NewTicker(time.Duration(float64(time.Second) / perNode))
			defer t.Stop()
			g := n.API().Genesis()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				acc := n.API().Account(a.Address())
				tx := chain.Transaction{Type: chain.TxTransfer, ChainID: g.ChainID, From: a.Address(), To: to,
					Amount: 1, Fee: g.MinFee, Nonce: *acc.PendingNonce + 1}
				tx.Sign(a.Key)
				at := time.Now()
				if _, err := n.API().SubmitTx(tx); err != nil {
					l.Failed.Add(1)
					continue
				}
				l.Submitted.Add(1)
				if rec != nil {
					rec.Sent(ni, tx, at)
				}
			}
		}()
	}
	return l
}

// Wait waits for the load's senders to stop.
func (l *Load) Wait() { l.wg.Wait() }
