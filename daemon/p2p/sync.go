package p2p

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/poslab/posd/chain"
)

const (
	syncRequestLen = 8 + 4
	maxStepBack    = 64 // blocks stepped back (doubling) before restarting from 0
	logEveryBlocks = 1000
	// syncRequestTimeout bounds one range request, however slow the peer.
	syncRequestTimeout = 2 * time.Minute
	// syncBackoff is how long a peer whose sync failed is left alone.
	syncBackoff = time.Minute
	// syncBatchTxs is how many transactions sync buffers before handing
	// blocks to the node: about 20 blocks of the largest size (a few MB).
	syncBatchTxs = 100000
	logEvery     = 2 * time.Second
)

// requestSync asks the sync loop to sync from p (deduplicated, in order).
func (n *Node) requestSync(p peer.ID) {
	n.mu.Lock()
	if until, ok := n.syncBackoff[p]; ok && time.Now().Before(until) {
		n.mu.Unlock()
		return
	}
	dup := false
	for _, q := range n.pending {
		if q == p {
			dup = true
			break
		}
	}
	if !dup && len(n.pending) < 64 {
		n.pending = append(n.pending, p)
	}
	n.mu.Unlock()
	select {
	case n.syncWake <- struct{}{}:
	default:
	}
}

// errRejected marks a sync that stopped because this node refused a block.
var errRejected = errors.New("rejected")

// backOff keeps p out of sync for a while after a sync with it failed
// (a rejected block, no common ancestor within reach): without it a peer
// on a branch we refuse would be synced from again at every status poll.
func (n *Node) backOff(p peer.ID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.syncBackoff == nil {
		n.syncBackoff = make(map[peer.ID]time.Time)
	}
	n.syncBackoff[p] = time.Now().Add(syncBackoff)
}

func (n *Node) nextSync() (peer.ID, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.pending) == 0 {
		return "", false
	}
	p := n.pending[0]
	n.pending = n.pending[1:]
	return p, true
}

// syncLoop runs one sync at a time, and polls every peer's status so a
// higher head is noticed even when gossip was missed.
func (n *Node) syncLoop() {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.syncWake:
		case <-t.C:
			n.pollPeers()
		}
		for n.ctx.Err() == nil {
			p, ok := n.nextSync()
			if !ok {
				break
			}
			n.syncWith(p)
		}
	}
}

// pollPeers refreshes the status of every connected peer; observe queues a
// sync with those ahead of us.
func (n *Node) pollPeers() {
	var wg sync.WaitGroup
	for _, p := range n.host.Network().Peers() {
		if n.gater.isBanned(p) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.handshake(n.ctx, p)
		}()
	}
	wg.Wait()
}

// errStepBack: the first block of a range has an unknown parent, so we are
// on another fork than the peer below that height.
var errStepBack = errors.New("first block has an unknown parent")

// syncWith pulls blocks from p, starting after our head, until p has no
// more, stepping back to find the common ancestor when needed.
func (n *Node) syncWith(p peer.ID) {
	st, err := n.handshake(n.ctx, p)
	if err != nil {
		if n.ctx.Err() == nil {
			n.log.Debug("p2p: sync: status failed", "peer", p, "err", err)
		}
		return
	}
	ourHeight, ourHead := n.h.Head()
	base := ourHeight + 1
	switch {
	case st.height < ourHeight:
		return
	case st.height == ourHeight:
		if st.head == ourHead {
			return
		}
		// Same height, another head: fetch the peer's head so fork choice
		// can settle it. Without this, two halves that forked at the last
		// block would stay apart until somebody forged again.
		base = ourHeight
	}
	target := st.height
	from := base
	var back uint64
	start := time.Now()
	lastLog, lastCount := start, 0
	imported := 0
	n.log.Info("p2p: sync started", "peer", p.String(), "height", ourHeight, "target", target)
	batcher, _ := n.h.(BatchHandler)
	var pending []*chain.Block
	pendingTxs := 0
	// flush hands the pending blocks to the batch handler. first says they
	// begin the requested range, where an unknown parent means "step back".
	flush := func(first bool) error {
		accepted, herr := batcher.HandleBlocks(pending)
		imported += accepted
		var err error
		switch {
		case herr == nil || errors.Is(herr, ErrIgnore):
		case errors.Is(herr, ErrUnknownParent) && accepted == 0 && first:
			err = errStepBack
		default:
			err = fmt.Errorf("block %d %w: %w", pending[accepted].Height, errRejected, herr)
		}
		last := pending[len(pending)-1]
		if last.Height > target {
			target = last.Height
		}
		if now := time.Now(); err == nil && now.Sub(lastLog) >= logEvery {
			n.log.Info("p2p: syncing", "peer", p.String(), "height", last.Height, "target", target,
				"blocks_per_s", int(float64(imported-lastCount)/now.Sub(lastLog).Seconds()))
			lastLog, lastCount = now, imported
		}
		pending, pendingTxs = pending[:0], 0
		return err
	}
	for n.ctx.Err() == nil {
		got := 0
		pending, pendingTxs = pending[:0], 0
		err := n.fetchBlocks(p, from, maxSyncRange, func(b *chain.Block) error {
			if b.Height != from+uint64(got) {
				return fmt.Errorf("peer sent height %d, want %d", b.Height, from+uint64(got))
			}
			got++
			if len(b.Transactions) > chain.MaxBlockTxsLimit {
				return fmt.Errorf("block %d holds %d transactions, more than any network allows", b.Height, len(b.Transactions))
			}
			if batcher != nil {
				// Bound what a peer can make us hold before validating it:
				// hand over the batch once it carries syncBatchTxs transactions.
				pending = append(pending, b)
				pendingTxs += len(b.Transactions) + 1
				if pendingTxs >= syncBatchTxs {
					return flush(got == len(pending))
				}
				return nil
			}
			err := n.h.HandleBlock(b)
			switch {
			case err == nil:
				imported++
			case errors.Is(err, ErrUnknownParent):
				if got == 1 {
					return errStepBack
				}
				return fmt.Errorf("block %d: %w", b.Height, err)
			case errors.Is(err, ErrIgnore):
			default:
				return fmt.Errorf("block %d %s %w: %w", b.Height, b.Hash(), errRejected, err)
			}
			if b.Height > target {
				target = b.Height
			}
			if now := time.Now(); imported-lastCount >= logEveryBlocks || now.Sub(lastLog) >= logEvery {
				rate := float64(imported-lastCount) / now.Sub(lastLog).Seconds()
				n.log.Info("p2p: syncing", "peer", p.String(), "height", b.Height, "target", target,
					"blocks_per_s", int(rate))
				lastLog, lastCount = now, imported
			}
			return nil
		})
		if err == nil && len(pending) > 0 {
			err = flush(got == len(pending))
		}
		if errors.Is(err, errStepBack) {
			if from == 0 {
				n.log.Warn("p2p: sync stopped: no common ancestor with peer", "peer", p.String())
				n.backOff(p)
				return
			}
			if back == 0 {
				back = 1
			} else {
				back *= 2
			}
			if back > maxStepBack || back >= base {
				from = 0
			} else {
				from = base - back
			}
			n.log.Info("p2p: sync: looking for the common ancestor", "peer", p.String(), "from", from)
			continue
		}
		if err != nil {
			if n.ctx.Err() == nil {
				n.log.Warn("p2p: sync stopped", "peer", p.String(), "err", err)
				if errors.Is(err, errRejected) {
					n.backOff(p) // a transient network error is retried at the next poll
				}
			}
			return
		}
		if got == 0 {
			break
		}
		from += uint64(got)
	}
	if n.ctx.Err() != nil {
		return
	}
	height, head := n.h.Head()
	elapsed := time.Since(start)
	n.log.Info("p2p: sync finished", "peer", p.String(), "height", height, "head", head.String(),
		"imported", imported, "elapsed", elapsed.Round(time.Millisecond),
		"blocks_per_s", int(float64(imported)/elapsed.Seconds()))
}

// fetchBlocks requests [from, from+limit) from p and calls fn on each block
// as it arrives. An error from fn ends the request and is returned.
func (n *Node) fetchBlocks(p peer.ID, from uint64, limit int, fn func(*chain.Block) error) error {
	ctx, cancel := context.WithTimeout(n.ctx, statusTimeout)
	s, err := n.host.NewStream(network.WithNoDial(ctx, "sync from a connected peer"), p, SyncProtocol)
	cancel()
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if ok {
			s.Close()
		} else {
			s.Reset()
		}
	}()
	req := make([]byte, 0, syncRequestLen)
	req = binary.BigEndian.AppendUint64(req, from)
	req = binary.BigEndian.AppendUint32(req, uint32(limit))
	s.SetWriteDeadline(time.Now().Add(statusTimeout))
	if _, err := s.Write(req); err != nil {
		return err
	}
	s.CloseWrite()
	// However slowly a peer drips blocks, one request ends in time, so
	// one peer cannot hold the (single) sync loop.
	requestDeadline := time.Now().Add(syncRequestTimeout)
	r := bufio.NewReaderSize(s, 64<<10)
	var buf []byte
	for count := 0; ; count++ {
		deadline := time.Now().Add(syncReadTimeout)
		if deadline.After(requestDeadline) {
			deadline = requestDeadline
		}
		s.SetReadDeadline(deadline)
		size, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("read block length: %w", err)
		}
		if size == 0 {
			ok = true
			return nil
		}
		if size > maxMessageSize {
			return fmt.Errorf("block of %d bytes (limit %d)", size, maxMessageSize)
		}
		if count >= limit {
			return fmt.Errorf("peer sent more than %d blocks", limit)
		}
		if cap(buf) < int(size) {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("read block: %w", err)
		}
		b, err := chain.DecodeBlock(buf)
		if err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
}

// serveSync answers a range request with our main-chain blocks.
func (n *Node) serveSync(s network.Stream) {
	select {
	case n.serveSem <- struct{}{}:
		defer func() { <-n.serveSem }()
	default:
		s.Reset()
		return
	}
	s.SetReadDeadline(time.Now().Add(statusTimeout))
	req := make([]byte, syncRequestLen)
	if _, err := io.ReadFull(s, req); err != nil {
		s.Reset()
		return
	}
	from := binary.BigEndian.Uint64(req)
	limit := int(binary.BigEndian.Uint32(req[8:]))
	limit = min(max(limit, 0), maxSyncRange)
	var blocks []*chain.Block
	if limit > 0 {
		var err error
		blocks, err = n.h.Blocks(from, limit)
		if err != nil {
			n.log.Debug("p2p: serve sync", "from", from, "err", err)
			s.Reset()
			return
		}
	}
	w := bufio.NewWriterSize(s, 64<<10)
	var lenBuf [binary.MaxVarintLen64]byte
	for i, b := range blocks {
		if i >= limit {
			break
		}
		enc := chain.EncodeBlock(b)
		s.SetWriteDeadline(time.Now().Add(syncReadTimeout))
		k := binary.PutUvarint(lenBuf[:], uint64(len(enc)))
		if _, err := w.Write(lenBuf[:k]); err != nil {
			s.Reset()
			return
		}
		if _, err := w.Write(enc); err != nil {
			s.Reset()
			return
		}
	}
	s.SetWriteDeadline(time.Now().Add(syncReadTimeout))
	w.WriteByte(0)
	if err := w.Flush(); err != nil {
		s.Reset()
		return
	}
	s.Close()
}
