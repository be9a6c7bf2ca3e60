package chain

import (
	"runtime"
	"sync"
	"sync/atomic"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// The signature rule (the v2 rules, docs/CONSENSUS.md): every transaction and block
// signature is valid by ZIP-215, the rule of Zcash and ed25519consensus:
// the cofactored equation [8][S]B = [8]R + [8][k]A, with non-canonical and
// small-order encodings of A and R accepted and S < ℓ required. A single
// check and a batch check agree on every input under this rule, which is
// what lets nodes batch-verify without ever splitting on a crafted
// signature. Every path (single, batch, batch fallback) uses it.

// zip215 are the verification options of the rule.
var zip215 = &voi.Options{Verify: voi.VerifyOptionsZIP_215}

// verifyZIP215 checks one signature by the rule; pub is 32 bytes.
func verifyZIP215(pub, msg, sig []byte) bool {
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, zip215)
}

// Batch sizes. Measured here on one core with cached expanded keys
// (BenchmarkBatchChunkSize): 52–57k signatures/s in batches of 64, 73k/s in
// batches of 500, 79–85k/s from 1000 to 4000, where it levels off. So a
// batch is as large as it can be while still spreading over the cores
// verification may use: at least minBatchChunk, at most maxBatchChunk.
const (
	minBatchChunk = 64
	maxBatchChunk = 1024
)

// chunkSize is the batch size for n signatures.
func chunkSize(n int) int {
	workers := verifySlots.limit()
	return min(maxBatchChunk, max(minBatchChunk, (n+workers-1)/workers))
}

// verifySlots bounds the signature batches being checked at once in the
// whole process to GOMAXPROCS−1 (at least one): one P is always left for
// everything else (API reads, the forger's commit, gossip), so a ready
// connection never waits behind a flood of signatures (a load test, a block
// of 10,000 transactions, a fresh node syncing) for a P: Go's scheduler has
// no priorities, and with every P running batches a read waited tens of
// milliseconds. posd runs with one P more than the cores
// (internal/tune), so the batches may use every core while that P exists;
// the operating system shares the cores among the threads. What surrounds
// the batches (signing bytes, expanding new keys, single checks of side
// blocks) is not bounded: it is a small part of the work.
var verifySlots = newSlots(0)

// slots is a counting semaphore whose urgent waiters go first. Blocks
// (CheckTxs) are urgent: the chain advances one block at a time, so a
// block's check must not queue behind a pool's admissions, which only
// wait a little longer.
type slots struct {
	mu             sync.Mutex
	fixed          int // the bound; 0: one fewer than GOMAXPROCS, read at each use
	inUse          int
	urgent, normal []chan struct{} // waiters, oldest first
}

func newSlots(fixed int) *slots { return &slots{fixed: fixed} }

// limit is the bound now (GOMAXPROCS may change while the process runs).
func (s *slots) limit() int {
	if s.fixed > 0 {
		return s.fixed
	}
	return max(1, runtime.GOMAXPROCS(0)-1)
}

// acquire takes a slot, waiting for one if none is free.
func (s *slots) acquire(urgent bool) {
	s.mu.Lock()
	if s.inUse < s.limit() && len(s.urgent) == 0 && (urgent || len(s.normal) == 0) {
		s.inUse++
		s.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	if urgent {
		s.urgent = append(s.urgent, ch)
	} else {
		s.normal = append(s.normal, ch)
	}
	s.mu.Unlock()
	<-ch // a release gave it a slot
}

// release frees a slot and gives the free ones to the oldest urgent
// waiters, then the oldest other waiters.
func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inUse--
	for _, q := range []*[]chan struct{}{&s.urgent, &s.normal} {
		for len(*q) > 0 && s.inUse < s.limit() {
			ch := (*q)[0]
			*q = (*q)[1:]
			s.inUse++
			close(ch)
		}
	}
}

// DefaultSigCacheKeys bounds the expanded public keys a SigVerifier keeps
// (about 1.5 KiB each: 6 MiB).
const DefaultSigCacheKeys = 4096

// SigVerifier checks transaction signatures in batches, by the ZIP-215
// rule, on all cores. It keeps the expanded form of recent senders' public
// keys (two generations of at most keys entries each), which makes repeat
// senders' signatures cheaper. A failed batch is bisected, so one bad
// signature costs about two batches' work, not one single check per
// signature. Safe for concurrent use.
type SigVerifier struct {
	mu        sync.Mutex
	gen       int
	cur, prev map[PublicKey]*voi.ExpandedPublicKey
}

// NewSigVerifier returns a verifier caching up to 2 × keys expanded keys
// (DefaultSigCacheKeys when keys <= 0).
func NewSigVerifier(keys int) *SigVerifier {
	if keys <= 0 {
		keys = DefaultSigCacheKeys
	}
	return &SigVerifier{gen: keys, cur: make(map[PublicKey]*voi.ExpandedPublicKey)}
}

// defaultSigVerifier serves CheckBlockTxs when the caller brings none.
var defaultSigVerifier = NewSigVerifier(0)

// expanded returns the expanded form of pub, from the cache when it can.
func (v *SigVerifier) expanded(pub PublicKey) (*voi.ExpandedPublicKey, error) {
	v.mu.Lock()
	k, ok := v.cur[pub]
	if !ok {
		if k, ok = v.prev[pub]; ok {
			v.cur[pub] = k
		}
	}
	v.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err := voi.NewExpandedPublicKey(pub[:])
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if len(v.cur) >= v.gen {
		v.prev, v.cur = v.cur, make(map[PublicKey]*voi.ExpandedPublicKey, v.gen)
	}
	v.cur[pub] = k
	v.mu.Unlock()
	return k, nil
}

// sigItem is one signature to check.
type sigItem struct {
	key *voi.ExpandedPublicKey
	msg []byte
	sig []byte
	err error // set when the item is known bad before any check
}

// prepare readies tx's check: its key and signature are bytes already,
// so only a missing one, or a key that is not a point, is bad at once.
func (v *SigVerifier) prepare(tx *Transaction) sigItem {
	if tx.PublicKey.IsZero() {
		return sigItem{err: errNoPublicKey}
	}
	if tx.Signature.IsZero() {
		return sigItem{err: errNoSignature}
	}
	key, err := v.expanded(tx.PublicKey)
	if err != nil {
		// Not a point at all: no signature verifies under it.
		return sigItem{err: ruleErrorf(ErrBadSignature, "signature does not verify")}
	}
	return sigItem{key: key, msg: tx.SigningBytes(), sig: tx.Signature[:]}
}

var errSigDoesNotVerify = &RuleError{Code: ErrBadSignature.Code, Message: "signature does not verify"}

// VerifyTxs checks the signature of every transaction (nothing else) and
// returns one error per transaction, nil for a good signature: what a pool
// needs to admit a batch.
func (v *SigVerifier) VerifyTxs(txs []Transaction) []error {
	items := v.prepareAll(txs)
	v.run(items, false)
	errs := make([]error, len(items))
	for i := range items {
		errs[i] = items[i].err
	}
	return errs
}

// CheckTxs checks the signature of every transaction (nothing else) and
// returns nil, or a *BlockTxError for the lowest index whose signature is
// bad, as a sequential check would.
func (v *SigVerifier) CheckTxs(txs []Transaction) error {
	items := v.prepareAll(txs)
	if i := v.run(items, true); i >= 0 {
		return txError(i, &txs[i], items[i].err)
	}
	return nil
}

func (v *SigVerifier) prepareAll(txs []Transaction) []sigItem {
	items := make([]sigItem, len(txs))
	parallel(len(txs), func(i int) { items[i] = v.prepare(&txs[i]) })
	return items
}

// run checks items batch by batch (chunkSize each, on as many cores as
// verifySlots allows) and sets err on the bad ones. With firstOnly (a
// block's check, which is urgent) it may stop at the lowest bad item,
// whose index it returns (-1: all good); without, every item's err is set.
func (v *SigVerifier) run(items []sigItem, firstOnly bool) int {
	var lowest atomic.Int64
	lowest.Store(int64(len(items)))
	size := chunkSize(len(items))
	chunks := (len(items) + size - 1) / size
	parallelN(min(verifySlots.limit(), chunks), chunks, func(c int) {
		lo := c * size
		if firstOnly && int64(lo) > lowest.Load() {
			return // a lower chunk already holds the answer
		}
		hi := min(lo+size, len(items))
		bad := checkChunk(items, lo, hi, firstOnly, &lowest)
		if bad >= 0 {
			for {
				cur := lowest.Load()
				if int64(bad) >= cur || lowest.CompareAndSwap(cur, int64(bad)) {
					break
				}
			}
		}
	})
	if l := int(lowest.Load()); l < len(items) {
		return l
	}
	return -1
}

// checkChunk checks items[lo:hi] holding a verification slot (released
// even if the check panics), unless, with firstOnly, a lower chunk found
// the answer while it waited for one.
func checkChunk(items []sigItem, lo, hi int, firstOnly bool, lowest *atomic.Int64) int {
	verifySlots.acquire(firstOnly)
	defer verifySlots.release()
	if firstOnly && int64(lo) > lowest.Load() {
		return -1
	}
	return bisect(items, lo, hi, false, firstOnly)
}

// bisect checks items[lo:hi] and returns the lowest bad index in it, or
// -1. knownBad says a batch over exactly this range already failed. With
// firstOnly the search follows the lowest failing half only; otherwise
// both halves are searched and every bad item gets its err.
func bisect(items []sigItem, lo, hi int, knownBad, firstOnly bool) int {
	if hi-lo <= 2 {
		first := -1
		for i := lo; i < hi; i++ {
			it := &items[i]
			if it.err == nil {
				batchStats.singles.Add(1)
				if !voi.VerifyExpandedWithOptions(it.key, it.msg, it.sig, zip215) {
					it.err = errSigDoesNotVerify
				}
			}
			if it.err != nil && first < 0 {
				first = i
				if firstOnly {
					return first
				}
			}
		}
		return first
	}
	if !knownBad && batchOK(items[lo:hi]) {
		return -1
	}
	mid := lo + (hi-lo)/2
	left := bisect(items, lo, mid, false, firstOnly)
	if left >= 0 && firstOnly {
		return left
	}
	// The whole range failed: if the left half is clean, the right half
	// is known bad without checking it again.
	right := bisect(items, mid, hi, left < 0, firstOnly)
	if left >= 0 {
		return left
	}
	return right
}

// batchStats counts signature checks, so tests can bound what a bad
// signature costs.
var batchStats struct{ singles, batched atomic.Int64 }

// batchOK reports whether every item of a batch verifies. Items known bad
// fail the batch without a check.
func batchOK(items []sigItem) bool {
	batchStats.batched.Add(int64(len(items)))
	bv := voi.NewBatchVerifierWithCapacity(len(items))
	for i := range items {
		if items[i].err != nil {
			return false
		}
		bv.AddExpandedWithOptions(items[i].key, items[i].msg, items[i].sig, zip215)
	}
	return bv.VerifyBatchOnly(nil)
}

// parallel runs f(0..n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	parallelN(runtime.GOMAXPROCS(0), n, f)
}

// parallelN runs f(0..n-1) on up to workers goroutines.
func parallelN(workers, n int, f func(i int)) {
	workers = min(workers, n)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

// prepareVote is prepare for a vote: its key and signature are fixed-size
// bytes, so only a key that is not a point is bad before any check.
func (v *SigVerifier) prepareVote(chainID string, vote *Vote) sigItem {
	key, err := v.expanded(vote.PublicKey)
	if err != nil {
		return sigItem{err: errVoteSigDoesNotVerify}
	}
	return sigItem{key: key, msg: vote.SigningBytes(chainID), sig: vote.Signature[:]}
}

var errVoteSigDoesNotVerify = &RuleError{Code: ErrBadVoteSig.Code, Message: "vote signature does not verify"}

func (v *SigVerifier) prepareVotes(chainID string, votes []Vote) []sigItem {
	items := make([]sigItem, len(votes))
	parallel(len(votes), func(i int) { items[i] = v.prepareVote(chainID, &votes[i]) })
	return items
}

// VerifyVotes checks the signature of every vote (nothing else), by the
// ZIP-215 rule in batches as for transactions, and returns one error per
// vote (bad_vote_signature), nil for a good one: what a vote pool needs
// to admit a gossip batch.
func (v *SigVerifier) VerifyVotes(chainID string, votes []Vote) []error {
	items := v.prepareVotes(chainID, votes)
	v.run(items, false)
	errs := make([]error, len(items))
	for i := range items {
		if items[i].err != nil {
			vt := &votes[i]
			errs[i] = ruleErrorf(ErrBadVoteSig, "vote by %s for %d→%d does not verify", vt.Voter(), vt.Source.Height, vt.Target.Height)
		}
	}
	return errs
}

// CheckVotes checks the signature of every vote of a block and returns
// nil, or a *VoteError for the lowest index whose signature is bad.
func (v *SigVerifier) CheckVotes(chainID string, votes []Vote) error {
	items := v.prepareVotes(chainID, votes)
	if i := v.run(items, true); i >= 0 {
		return &VoteError{Index: i, Err: errVoteSigDoesNotVerify}
	}
	return nil
}
