// Package mempool keeps the transactions a node has accepted but not yet seen
// committed, in per-sender nonce order, and hands the forger the ones that
// can execute next.
//
// Admission is conservative: a sender's pooled transactions must all be
// payable from the sender's committed balance and stake, counting every
// pending debit and no pending credit. Signatures verified at admission are
// remembered by the node's shared verifier (Config.Sigs), so a block
// carrying pooled transactions is not verified twice.
package mempool

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poslab/posd/chain"
)

// Defaults for a zero Config.
const (
	DefaultLimit       = 100000
	DefaultMaxNonceGap = 64
)

// Pool rules, beside the chain's own. Compare with errors.Is: any
// *chain.RuleError with the same code matches.
var (
	ErrAlreadyKnown = &chain.RuleError{Code: "already_known"}
	ErrNonceInUse   = &chain.RuleError{Code: "nonce_in_use"}
	ErrNonceGap     = &chain.RuleError{Code: "nonce_gap"}
	ErrPoolFull     = &chain.RuleError{Code: "pool_full"}
)

func ruleErr(sentinel *chain.RuleError, format string, args ...any) error {
	return &chain.RuleError{Code: sentinel.Code, Message: fmt.Sprintf(format, args...)}
}

// StateView is the committed state the pool checks against. *chain.State
// satisfies it. The caller guarantees it does not change during a call.
type StateView interface {
	Account(chain.Address) chain.Account
}

// SigVerifier checks a transaction's signature (id is tx.ID()); the node
// passes its chain manager's verifier, which caches what it verified.
type SigVerifier interface {
	VerifyTx(tx *chain.Transaction, id chain.Hash) error
}

// plainVerifier verifies every signature.
type plainVerifier struct{}

func (plainVerifier) VerifyTx(tx *chain.Transaction, _ chain.Hash) error { return tx.VerifySignature() }

// Config bounds the pool. Zero fields take the defaults.
type Config struct {
	Limit       int         // most transactions pooled at once (DefaultLimit)
	MaxNonceGap uint64      // how many nonces may be missing before a pooled one (DefaultMaxNonceGap)
	Sigs        SigVerifier // nil: verify every signature
}

// Eviction is a pooled transaction that Update dropped, and why.
type Eviction struct {
	Tx  chain.Transaction
	Err error
}

// entry is one pooled transaction.
type entry struct {
	tx      chain.Transaction
	id      chain.Hash
	seq     uint64    // arrival order
	at      time.Time // arrival time
	debit   uint64    // what leaves the sender's balance
	unstake uint64    // what leaves the sender's stake

	prev, next *entry // arrival list
}

// sender is one address's pooled transactions.
type sender struct {
	txs     []*entry // sorted by nonce, distinct nonces
	debit   uint64   // sum of txs' debits
	unstake uint64   // sum of txs' unstakes
	// checked is the account every tx in txs was checked against; while the
	// account stays equal and dirty is false, Update has nothing to do.
	checked chain.Account
	dirty   bool
}

// find returns where nonce is or would be in s.txs.
func (s *sender) find(nonce uint64) (int, bool) {
	return slices.BinarySearchFunc(s.txs, nonce, func(e *entry, n uint64) int {
		switch {
		case e.tx.Nonce < n:
			return -1
		case e.tx.Nonce > n:
			return 1
		}
		return 0
	})
}

// Pool is the set of pending transactions. It is safe for concurrent use.
type Pool struct {
	chainID  string
	exchange chain.ExchangePolicy
	maxGap   uint64
	sigs     SigVerifier
	now      func() time.Time

	mu         sync.Mutex
	limit      int
	seq        uint64
	byID       map[chain.Hash]*entry
	senders    map[chain.Address]*sender
	head, tail *entry // arrival order, oldest first
}

// New returns an empty pool for the network g describes.
func New(g *chain.Genesis, cfg Config) *Pool {
	if cfg.Limit <= 0 {
		cfg.Limit = DefaultLimit
	}
	if cfg.MaxNonceGap == 0 {
		cfg.MaxNonceGap = DefaultMaxNonceGap
	}
	if cfg.Sigs == nil {
		cfg.Sigs = plainVerifier{}
	}
	ex := g.Exchange
	ex.Authorities = slices.Clone(ex.Authorities)
	return &Pool{
		chainID:  g.ChainID,
		exchange: ex,
		maxGap:   cfg.MaxNonceGap,
		sigs:     cfg.Sigs,
		now:      time.Now,
		limit:    cfg.Limit,
		byID:     make(map[chain.Hash]*entry),
		senders:  make(map[chain.Address]*sender),
	}
}

// SetLimit changes how many transactions the pool may hold (n ≤ 0: the
// default). Lowering it evicts nothing; admission refuses until the pool
// has drained below it.
func (p *Pool) SetLimit(n int) {
	if n <= 0 {
		n = DefaultLimit
	}
	p.mu.Lock()
	p.limit = n
	p.mu.Unlock()
}

// Limit returns how many transactions the pool may hold.
func (p *Pool) Limit() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limit
}

// Len returns how many transactions are pooled.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byID)
}

// Get returns the pooled transaction with id.
func (p *Pool) Get(id chain.Hash) (chain.Transaction, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.byID[id]; ok {
		return e.tx, true
	}
	return chain.Transaction{}, false
}

// All returns every pooled transaction, oldest arrival first.
func (p *Pool) All() []chain.Transaction {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]chain.Transaction, 0, len(p.byID))
	for e := p.head; e != nil; e = e.next {
		out = append(out, e.tx)
	}
	return out
}

// Oldest returns the arrival time of the oldest pooled transaction, and
// false when the pool is empty.
func (p *Pool) Oldest() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head == nil {
		return time.Time{}, false
	}
	return p.head.at, true
}

// PendingNonce returns the highest nonce of a's contiguous pooled run from
// its account nonce + 1, or the account nonce when that run is empty: the
// nonce a wallet's next transaction should follow.
func (p *Pool) PendingNonce(a chain.Address, st StateView) uint64 {
	n := st.Account(a).Nonce
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.senders[a].contiguousTop(n)
}

// checked is what admission learns about a transaction outside the lock.
type checked struct {
	id chain.Hash
}

// precheck runs the stateless rules and the signature (unless cached).
func (p *Pool) precheck(tx *chain.Transaction) (checked, error) {
	c := checked{id: tx.ID()}
	if err := tx.CheckStateless(p.chainID); err != nil {
		return c, err
	}
	return c, p.sigs.VerifyTx(tx, c.id)
}

// Add admits tx against the committed state st. It returns tx's id, also
// when it refuses tx; every refusal is a *chain.RuleError (see the package
// Err* sentinels and chain's).
func (p *Pool) Add(tx chain.Transaction, st StateView) (chain.Hash, error) {
	c, err := p.precheck(&tx)
	if err != nil {
		return c.id, err
	}
	p.mu.Lock()
	err = p.admit(&tx, c.id, st)
	p.mu.Unlock()
	return c.id, err
}

// AddBatch admits txs in order, as Add would one by one, and returns one
// error (nil: admitted) per transaction. Signatures are verified in
// parallel, then the batch is admitted under a single lock.
func (p *Pool) AddBatch(txs []chain.Transaction, st StateView) []error {
	errs := make([]error, len(txs))
	cs := make([]checked, len(txs))
	check := func(i int) { cs[i], errs[i] = p.precheck(&txs[i]) }
	if workers := min(runtime.GOMAXPROCS(0), len(txs)); workers <= 1 {
		for i := range txs {
			check(i)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= len(txs) {
						return
					}
					check(i)
				}
			})
		}
		wg.Wait()
	}
	p.mu.Lock()
	for i := range txs {
		if errs[i] != nil {
			continue
		}
		errs[i] = p.admit(&txs[i], cs[i].id, st)
	}
	p.mu.Unlock()
	return errs
}

// Reinsert puts back transactions a reorg reverted, checked against the new
// state st as new arrivals; those that no longer fit are skipped.
// Signatures still cached are not verified again.
func (p *Pool) Reinsert(txs []chain.Transaction, st StateView) {
	p.AddBatch(txs, st)
}

// costs returns what tx takes from its sender's balance and stake.
func costs(tx *chain.Transaction) (debit, unstake uint64) {
	switch tx.Type {
	case chain.TxTransfer, chain.TxStake:
		return tx.Amount + tx.Fee, 0 // CheckStateless rules out overflow
	case chain.TxUnstake:
		return tx.Fee, tx.Amount
	}
	return tx.Fee, 0
}

// admit runs the stateful pool rules and pools tx. p.mu is held.
func (p *Pool) admit(tx *chain.Transaction, id chain.Hash, st StateView) error {
	if _, ok := p.byID[id]; ok {
		return ruleErr(ErrAlreadyKnown, "transaction %s is already pooled", id)
	}
	acc := st.Account(tx.From)
	if tx.Nonce <= acc.Nonce {
		return ruleErr(chain.ErrBadNonce, "nonce %d already used: account %s is at nonce %d", tx.Nonce, tx.From, acc.Nonce)
	}
	s := p.senders[tx.From]
	at := 0
	if s != nil {
		i, found := s.find(tx.Nonce)
		if found {
			return ruleErr(ErrNonceInUse, "%s already has transaction %s pooled at nonce %d", tx.From, s.txs[i].id, tx.Nonce)
		}
		at = i
	}
	if err := p.checkGap(tx.Nonce, s.contiguousTop(acc.Nonce)); err != nil {
		return err
	}
	if tx.Type == chain.TxExchange && !p.exchange.Allows(tx.From) {
		return ruleErr(chain.ErrNotExchange, "%s is not an exchange authority", tx.From)
	}
	if err := checkOverflow(tx, acc, st); err != nil {
		return err
	}
	debit, unstake := costs(tx)
	var pendDebit, pendUnstake uint64
	if s != nil {
		pendDebit, pendUnstake = s.debit, s.unstake
		if s.checked != acc {
			// st moved on since the last Update: what it committed is no
			// longer pending.
			pendDebit, pendUnstake = 0, 0
			for _, e := range s.txs {
				if e.tx.Nonce > acc.Nonce {
					pendDebit += e.debit
					pendUnstake += e.unstake
				}
			}
		}
	}
	if unstake > 0 && (pendUnstake > acc.Stake || unstake > acc.Stake-pendUnstake) {
		return ruleErr(chain.ErrInsufficientStake, "stake %d, pending unstakes %d, needs %d", acc.Stake, pendUnstake, unstake)
	}
	if pendDebit > acc.Balance || debit > acc.Balance-pendDebit {
		return ruleErr(chain.ErrInsufficientFunds, "balance %d, pending %d, needs %d", acc.Balance, pendDebit, debit)
	}
	if len(p.byID) >= p.limit {
		return ruleErr(ErrPoolFull, "the pool holds %d transactions, its limit", len(p.byID))
	}

	p.seq++
	e := &entry{tx: *tx, id: id, seq: p.seq, at: p.now(), debit: debit, unstake: unstake}
	if s == nil {
		s = &sender{checked: acc}
		p.senders[tx.From] = s
	} else if s.checked != acc {
		s.dirty = true
	}
	s.txs = slices.Insert(s.txs, at, e)
	s.debit += debit
	s.unstake += unstake
	p.byID[id] = e
	e.prev = p.tail
	if p.tail != nil {
		p.tail.next = e
	} else {
		p.head = e
	}
	p.tail = e
	return nil
}

// unlink removes e from the id index and the arrival list (not from its
// sender). p.mu is held.
func (p *Pool) unlink(e *entry) {
	delete(p.byID, e.id)
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		p.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		p.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// checkOverflow refuses what would overflow a balance or a stake if it
// were applied now: the block would refuse it, so the pool must too.
func checkOverflow(tx *chain.Transaction, from chain.Account, st StateView) error {
	var have uint64
	switch tx.Type {
	case chain.TxExchange, chain.TxTransfer:
		have = st.Account(tx.To).Balance
	case chain.TxStake:
		have = from.Stake
	case chain.TxUnstake:
		have = from.Balance
	}
	if have+tx.Amount < have {
		return ruleErr(chain.ErrAmountOverflow, "%d more would overflow %d", tx.Amount, have)
	}
	return nil
}

// checkGap refuses a nonce that leaves more than maxGap missing nonces
// after top, the end of the sender's contiguous run (its account nonce when
// nothing is pooled). A long run of consecutive nonces is no gap at all.
func (p *Pool) checkGap(nonce, top uint64) error {
	if nonce > top && nonce-top-1 > p.maxGap {
		return ruleErr(ErrNonceGap, "nonce %d leaves %d nonces missing after %d (at most %d)", nonce, nonce-top-1, top, p.maxGap)
	}
	return nil
}

// contiguousTop is the highest nonce n such that every nonce from
// accountNonce+1 to n is pooled (accountNonce if none is). s may be nil.
func (s *sender) contiguousTop(accountNonce uint64) uint64 {
	n := accountNonce
	if s == nil {
		return n
	}
	i, _ := s.find(n + 1)
	for ; i < len(s.txs) && s.txs[i].tx.Nonce == n+1; i++ {
		n++
	}
	return n
}

// recheck says why e cannot stay pooled for an account acc that already
// owes debit and unstake to the sender's lower-nonce transactions, or nil.
func (p *Pool) recheck(e *entry, acc chain.Account, top, debit, unstake uint64) error {
	tx := &e.tx
	if err := p.checkGap(tx.Nonce, top); err != nil {
		return err
	}
	if tx.Type == chain.TxExchange && !p.exchange.Allows(tx.From) {
		return ruleErr(chain.ErrNotExchange, "%s is not an exchange authority", tx.From)
	}
	if e.unstake > 0 && (unstake > acc.Stake || e.unstake > acc.Stake-unstake) {
		return ruleErr(chain.ErrInsufficientStake, "stake %d, pending unstakes %d, needs %d", acc.Stake, unstake, e.unstake)
	}
	if debit > acc.Balance || e.debit > acc.Balance-debit {
		return ruleErr(chain.ErrInsufficientFunds, "balance %d, pending %d, needs %d", acc.Balance, debit, e.debit)
	}
	return nil
}

// Update brings the pool in line with a new committed state st, after a
// block or a reorg. It drops what st has committed (nonce ≤ account nonce),
// then walks each changed sender's remaining transactions in nonce order and
// evicts those the account can no longer pay for, or whose nonce is now
// more than the gap bound beyond the account's. It returns the evictions,
// oldest arrival first; committed transactions are not reported.
func (p *Pool) Update(st StateView) []Eviction {
	p.mu.Lock()
	defer p.mu.Unlock()
	type evicted struct {
		e   *entry
		err error
	}
	var out []evicted
	for addr, s := range p.senders {
		acc := st.Account(addr)
		if !s.dirty && acc == s.checked {
			continue
		}
		k := 0
		for k < len(s.txs) && s.txs[k].tx.Nonce <= acc.Nonce {
			p.unlink(s.txs[k])
			k++
		}
		kept := s.txs[:0]
		var debit, unstake uint64
		top := acc.Nonce // highest nonce of the contiguous run so far
		for _, e := range s.txs[k:] {
			if err := p.recheck(e, acc, top, debit, unstake); err != nil {
				p.unlink(e)
				out = append(out, evicted{e, err})
				continue
			}
			if e.tx.Nonce == top+1 {
				top++
			}
			debit += e.debit
			unstake += e.unstake
			kept = append(kept, e)
		}
		clear(s.txs[len(kept):])
		s.txs, s.debit, s.unstake, s.checked, s.dirty = kept, debit, unstake, acc, false
		if len(kept) == 0 {
			delete(p.senders, addr)
		}
	}
	if len(out) == 0 {
		return nil
	}
	slices.SortFunc(out, func(a, b evicted) int { return compareSeq(a.e.seq, b.e.seq) })
	ev := make([]Eviction, len(out))
	for i, o := range out {
		ev[i] = Eviction{Tx: o.e.tx, Err: o.err}
	}
	return ev
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cursor walks one sender's executable run during Pending.
type cursor struct {
	s          *sender
	i          int    // index in s.txs of the next transaction
	seq        uint64 // its arrival
	bal, stake uint64 // what the account has left for it
}

// Pending returns up to max transactions that can execute in order on st:
// for each sender the contiguous run from account nonce + 1 that the
// account can pay for (pending credits not counted), the senders
// interleaved by the arrival of their transactions, oldest first. Taken in
// the order returned, every transaction's nonce follows its sender's
// previous one. max ≤ 0 returns nothing.
func (p *Pool) Pending(max int, st StateView) []chain.Transaction {
	if max <= 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	h := make(cursorHeap, 0, len(p.senders))
	for addr, s := range p.senders {
		acc := st.Account(addr)
		i, found := s.find(acc.Nonce + 1)
		if !found {
			continue
		}
		c := cursor{s: s, i: i, seq: s.txs[i].seq, bal: acc.Balance, stake: acc.Stake}
		if p.payable(&c) {
			h = append(h, c)
		}
	}
	h.init()
	out := make([]chain.Transaction, 0, min(max, len(p.byID)))
	for len(out) < max && len(h) > 0 {
		c := &h[0]
		e := c.s.txs[c.i]
		out = append(out, e.tx)
		c.bal -= e.debit
		c.stake -= e.unstake
		c.i++
		if c.i < len(c.s.txs) && c.s.txs[c.i].tx.Nonce == e.tx.Nonce+1 && p.payable(c) {
			c.seq = c.s.txs[c.i].seq
			h.down(0)
		} else {
			h.pop()
		}
	}
	return out
}

// payable reports whether the account behind c can run c's next transaction.
func (p *Pool) payable(c *cursor) bool {
	e := c.s.txs[c.i]
	if e.tx.Type == chain.TxExchange && !p.exchange.Allows(e.tx.From) {
		return false
	}
	return e.debit <= c.bal && e.unstake <= c.stake
}

// cursorHeap is a min-heap of cursors by seq.
type cursorHeap []cursor

func (h cursorHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h cursorHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h[r].seq < h[l].seq {
			m = r
		}
		if h[i].seq <= h[m].seq {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h *cursorHeap) pop() {
	old := *h
	n := len(old) - 1
	old[0] = old[n]
	old[n] = cursor{}
	*h = old[:n]
	h.down(0)
}

// Remove drops the transactions with these ids (unknown ids are skipped).
// The forger uses it to evict a transaction a block refused, so the chain
// never stalls on it. Later nonces of the same sender stay, behind the gap.
func (p *Pool) Remove(ids ...chain.Hash) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		e, ok := p.byID[id]
		if !ok {
			continue
		}
		p.unlink(e)
		s := p.senders[e.tx.From]
		if i, found := s.find(e.tx.Nonce); found {
			s.txs = slices.Delete(s.txs, i, i+1)
			s.debit -= e.debit
			s.unstake -= e.unstake
			s.dirty = true
		}
		if len(s.txs) == 0 {
			delete(p.senders, e.tx.From)
		}
	}
}
