// Package mempool keeps the transactions a node has accepted but not yet seen
// committed, in per-sender nonce order, and hands the forger the ones that
// can execute next.
//
// Two kinds of pooled transaction are kept apart, as in go-ethereum's
// legacypool:
//
//   - pending (executable): the sender's contiguous run of nonces from its
//     account nonce + 1. Only these are gossiped (Admit's ready list,
//     Executable) and forged (Pending).
//   - queued (gapped): every later nonce, waiting for the gap to be filled.
//     At most AccountQueue per sender and GlobalQueue in all; a sender's
//     queued transactions expire when it has been idle for Lifetime.
//
// The pool is bounded in count (Limit) and in encoded bytes (MaxBytes).
// When it is full a newcomer may evict, cheapest first: any queued
// transaction if the newcomer is executable, a queued one with a lower fee
// if it is queued itself, and a pending one only if the newcomer is
// executable (a gapped transaction never evicts a pending one). Pending
// victims are always the last of their sender's run, so eviction never
// opens a gap: first from senders holding more than AccountSlots pending
// (any fee), then the lowest fee strictly below the newcomer's. A sender
// within its AccountSlots share therefore always finds room unless the
// pool is full of executable transactions paying at least as much, which
// forging drains.
//
// Admission is conservative: a sender's pooled transactions must all be
// payable from the sender's committed balance and stake, counting every
// pending debit and no pending credit. A transaction the committed state
// already rules out (a used nonce, a sender that cannot pay it alone) is
// refused before its signature is verified, so a flood from unfunded keys
// costs no signature checks. Signatures verified at admission are
// remembered by the node's shared verifier (Config.Sigs), so a block
// carrying pooled transactions is not verified twice.
package mempool

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/poslab/posd/chain"
)

// Defaults for a zero Config.
const (
	DefaultLimit       = 100000
	DefaultMaxBytes    = 64 << 20 // encoded (binary) bytes
	DefaultMaxNonceGap = 64
	// DefaultAccountSlots is the pending share each sender is guaranteed
	// (geth's AccountSlots). It is a share, not a cap: a sender may hold
	// more while the pool has room (an exchange or a load generator
	// pays out thousands per block), but those are the first evicted.
	DefaultAccountSlots = 16
	// DefaultAccountQueue caps one sender's queued transactions (geth's
	// AccountQueue), and equals the nonce gap bound.
	DefaultAccountQueue = 64
	// DefaultLifetime is how long a sender may stay idle before its
	// queued transactions expire.
	DefaultLifetime = 10 * time.Minute
	// maxEvictions bounds the work one admission may do to make room.
	maxEvictions = 64
	// expireEvery is how often the pool looks for expired transactions.
	expireEvery = time.Second
	// relayShare is the part of the pool (1/relayShare of its count and of
	// its bytes) that only transactions relayed by peers may fill: see
	// Origin.
	relayShare = 4
)

// Origin is who brings transactions to the pool: a client of this node
// (Local: the API) or a peer that relays them (Relayed: gossip, a gap
// fill). Local admissions find the pool full at 3/4 of its bounds; the
// last quarter is kept for relayed ones. Under a load that fills every
// node's pool, a relayed transaction refused as pool_full is one this
// node lacks while its peers hold it: the sender's later nonces reach it
// as nonce gaps, the forger it elects cannot include them, and they wait
// for a gap fill or the origin's rebroadcast. A 4-node devnet's first
// 200,000-transfer load refused 23-29k relays as pool_full and then
// 164-205k as nonce_gap (docs/PERFORMANCE.md). With the headroom, every
// node's pool is bounded by what clients were let in, 3/4 of a pool,
// plus what is still on its way between peers. A last eighth still
// refused relays in about one load of ten (1-10k, then up to 45k gaps);
// a quarter refused none in 40.
type Origin uint8

const (
	Relayed Origin = iota
	Local
)

// Pool rules, beside the chain's own. Compare with errors.Is: any
// *chain.RuleError with the same code matches.
var (
	ErrAlreadyKnown = &chain.RuleError{Code: "already_known"}
	ErrNonceInUse   = &chain.RuleError{Code: "nonce_in_use"}
	ErrNonceGap     = &chain.RuleError{Code: "nonce_gap"}
	ErrPoolFull     = &chain.RuleError{Code: "pool_full"}
	ErrQueueFull    = &chain.RuleError{Code: "queue_full"}
	ErrFeeTooLow    = &chain.RuleError{Code: "fee_too_low"}
	// ErrExpired is the reason of an eviction of an idle sender's queued
	// transactions; ErrEvicted that of a transaction a better one replaced.
	ErrExpired = &chain.RuleError{Code: "expired"}
	ErrEvicted = &chain.RuleError{Code: "evicted"}
)

func ruleErr(sentinel *chain.RuleError, format string, args ...any) error {
	return &chain.RuleError{Code: sentinel.Code, Message: fmt.Sprintf(format, args...)}
}

// alreadyPooled is ErrAlreadyKnown for a pooled transaction, without fmt:
// it is the most frequent refusal of gossip.
func alreadyPooled(id chain.Hash) error {
	return &chain.RuleError{Code: ErrAlreadyKnown.Code, Message: "transaction " + id.String() + " is already pooled"}
}

// StateView is the committed state the pool checks against. *chain.State
// satisfies it. The caller guarantees it does not change during a call
// (reads may run on several goroutines at once).
type StateView interface {
	Account(chain.Address) chain.Account
}

// Versioned is a StateView that says how recent it is (the chain
// manager's snapshots do): of two views, the one with the higher Version
// is the later state of the chain, a reorganised one included. The pool
// never takes a sender back to an older view than the one it last checked
// the sender against: a node's admissions read the newest snapshot while
// its Update may run a commit or two late, and going back would evict the
// sender's later nonces as gapped. A view that is not Versioned is taken
// as the newest (tests' plain states).
type Versioned interface {
	StateView
	Version() uint64
}

// versionOf is st's Version, 0 when it has none.
func versionOf(st StateView) uint64 {
	if v, ok := st.(Versioned); ok {
		return v.Version()
	}
	return 0
}

// older reports whether st is an older view than the one s was last
// checked against.
func (s *sender) older(st StateView) bool {
	v, ok := st.(Versioned)
	return ok && v.Version() < s.ver
}

// SigVerifier checks the signatures of a batch of transactions: it skips every i whose errs[i] is already set and sets
// errs[i] for each bad signature. The node passes its chain manager's
// verifier, which batch-verifies by the ZIP-215 rule and caches what it
// verified.
type SigVerifier interface {
	VerifyTxs(txs []chain.Transaction, errs []error)
}

// batchVerifier batch-verifies every signature, caching nothing but
// expanded public keys.
type batchVerifier struct{ sv *chain.SigVerifier }

func (v batchVerifier) VerifyTxs(txs []chain.Transaction, errs []error) {
	var todo []int
	for i := range txs {
		if errs[i] == nil {
			todo = append(todo, i)
		}
	}
	sub := make([]chain.Transaction, len(todo))
	for j, i := range todo {
		sub[j] = txs[i]
	}
	for j, err := range v.sv.VerifyTxs(sub) {
		errs[todo[j]] = err
	}
}

// Config bounds the pool. Zero fields take the defaults.
type Config struct {
	Sigs         SigVerifier   // nil: verify every signature
	Limit        int           // most transactions pooled at once (DefaultLimit)
	MaxBytes     int64         // most encoded bytes pooled at once (DefaultMaxBytes)
	MaxNonceGap  uint64        // how many nonces may be missing before a pooled one (DefaultMaxNonceGap)
	AccountSlots int           // pending transactions guaranteed per sender (DefaultAccountSlots)
	AccountQueue int           // queued transactions per sender (DefaultAccountQueue)
	GlobalQueue  int           // queued transactions in all (a quarter of Limit)
	Lifetime     time.Duration // idle time after which a sender's queued transactions expire (DefaultLifetime)
	// MinFee is the lowest fee admitted (0: any). The node passes the
	// genesis min_fee here.
	MinFee uint64
}

func (c Config) withDefaults() Config {
	if c.Limit <= 0 {
		c.Limit = DefaultLimit
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxNonceGap == 0 {
		c.MaxNonceGap = DefaultMaxNonceGap
	}
	if c.AccountSlots <= 0 {
		c.AccountSlots = DefaultAccountSlots
	}
	if c.AccountQueue <= 0 {
		c.AccountQueue = DefaultAccountQueue
	}
	if c.Lifetime <= 0 {
		c.Lifetime = DefaultLifetime
	}
	if c.Sigs == nil {
		c.Sigs = batchVerifier{chain.NewSigVerifier(0)}
	}
	return c
}

// Eviction is a pooled transaction the pool dropped other than by commit,
// and why: it no longer applies (a chain rule code), it expired
// (ErrExpired), or a better transaction took its room (ErrEvicted).
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
	size    int       // encoded bytes
	debit   uint64    // what leaves the sender's balance
	unstake uint64    // what leaves the sender's stake
	plain   bool      // a transfer to another account (plainTransfer)
	owner   *sender

	queued bool      // gapped; in Pool.queue at qidx
	qidx   int       // index in Pool.queue while queued
	since  time.Time // when it last became pending
	epoch  uint32    // bumped at every pending/queued change, so stale pendSlots are known
	gone   bool      // no longer pooled

	// Lingering's marks: when it last handed the entry out to be gossiped
	// again, and how many times.
	resentAt time.Time
	resent   uint8
}

// sender is one address's pooled transactions.
type sender struct {
	addr   chain.Address
	txs    []*entry // sorted by nonce, distinct nonces, all above checked.Nonce
	npend  int      // txs[:npend] are pending: nonces checked.Nonce+1 …
	others int      // how many of txs are not plain transfers (entry.plain)
	// debit and unstake sum txs' debits and unstakes.
	debit, unstake uint64
	// checked is the account every tx in txs was checked against, in the
	// view of version ver (Versioned; 0: unknown).
	checked chain.Account
	ver     uint64
	active  time.Time // last admission or promotion: queued expiry counts from it
	hidx    int       // index in Pool.victims, -1 when nothing is pending
}

func (s *sender) queued() int { return len(s.txs) - s.npend }

// count books e coming into (by 1) or leaving (by -1) s.txs in s.others.
func (s *sender) count(e *entry, by int) {
	if !e.plain {
		s.others += by
	}
}

// plainTransfer reports whether tx is a transfer to another account: all
// it asks of its sender is the nonce and the balance (committedTransfers).
func plainTransfer(tx *chain.Transaction) bool {
	return tx.Type == chain.TxTransfer && tx.To != tx.From
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

// pendSlot is an entry of Pool.pend, valid while the entry is pending with
// the same epoch.
type pendSlot struct {
	e     *entry
	epoch uint32
}

func (s pendSlot) valid() bool { return !s.e.gone && !s.e.queued && s.e.epoch == s.epoch }

// Pool is the set of pooled transactions. It is safe for concurrent use.
type Pool struct {
	// rules is the genesis the pool checks by (chain.Genesis.CheckTx,
	// chain.CheckTx): chain id, exchange policy, and Config.MinFee.
	rules chain.Genesis
	cfg   Config
	sigs  SigVerifier
	now   func() time.Time

	mu      sync.Mutex
	limit   int
	seq     uint64
	byID    map[chain.Hash]*entry
	senders map[chain.Address]*sender
	bytes   int64
	nqueued int
	// order is every entry by arrival, with tombstones (gone) compacted
	// once they are half of it: All and Page walk it.
	order []*entry
	dead  int
	// pend is the pending entries in the order they became pending, with
	// stale slots skipped from pendHead: Oldest and Executable read it.
	pend     []pendSlot
	pendHead int
	queue    queueHeap  // queued entries, cheapest first
	victims  senderHeap // senders with pending entries, first to lose one first
	evicted  []evicted  // since the last Update
	lastExp  time.Time
}

// New returns an empty pool for the network g describes.
func New(g *chain.Genesis, cfg Config) *Pool {
	cfg = cfg.withDefaults()
	rules := chain.Genesis{ChainID: g.ChainID, Exchange: g.Exchange, MinFee: cfg.MinFee}
	rules.Exchange.Authorities = slices.Clone(g.Exchange.Authorities)
	return &Pool{
		rules:   rules,
		cfg:     cfg,
		sigs:    cfg.Sigs,
		now:     time.Now,
		limit:   cfg.Limit,
		byID:    make(map[chain.Hash]*entry),
		senders: make(map[chain.Address]*sender),
		victims: senderHeap{slots: cfg.AccountSlots},
	}
}

// SetLimit changes how many transactions the pool may hold (n ≤ 0: the
// default). Lowering it evicts nothing; admission refuses (or evicts to
// make room) until the pool has drained below it.
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

// MinFee returns the lowest fee the pool admits.
func (p *Pool) MinFee() uint64 { return p.cfg.MinFee }

// queueLimit is the global cap on queued transactions. p.mu is held.
func (p *Pool) queueLimit() int {
	if p.cfg.GlobalQueue > 0 {
		return p.cfg.GlobalQueue
	}
	return max(p.limit/4, 1)
}

// Len returns how many transactions are pooled, pending and queued.
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

// Oldest returns since when the oldest pending transaction has been
// executable, and false when none is.
func (p *Pool) Oldest() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.pendHead < len(p.pend) && !p.pend[p.pendHead].valid() {
		p.pend[p.pendHead] = pendSlot{}
		p.pendHead++
	}
	if p.pendHead == len(p.pend) {
		return time.Time{}, false
	}
	return p.pend[p.pendHead].e.since, true
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
	id   chain.Hash
	size int
}

// precheck runs every rule that needs no account (chain.Genesis.CheckTx:
// the stateless rules, the fee floor, the exchange policy), and sizes tx.
// id is tx.ID() when the caller knows it, else zero.
func (p *Pool) precheck(tx *chain.Transaction) (checked, error) {
	c := checked{id: tx.ID()}
	if err := p.rules.CheckTx(tx); err != nil {
		if chain.CodeOf(err) == ErrFeeTooLow.Code {
			return c, ruleErr(ErrFeeTooLow, "fee %d is below this node's minimum %d", tx.Fee, p.cfg.MinFee)
		}
		return c, err
	}
	c.size = encodedSize(tx)
	return c, nil
}

// encodedSize is len(chain.EncodeTx(tx)), without encoding it.
func encodedSize(tx *chain.Transaction) int { return tx.EncodedLen() }

// screen refuses what the committed account alone already rules out.
func (p *Pool) screen(tx *chain.Transaction, acc chain.Account) error {
	if tx.Nonce <= acc.Nonce {
		return ruleErr(chain.ErrBadNonce, "nonce %d already used: account %s is at nonce %d", tx.Nonce, tx.From, acc.Nonce)
	}
	return p.payable(tx, acc, chain.Amounts{}, nil)
}

// payable checks tx against its sender's account acc, which already owes
// pend to the sender's pooled transactions before tx, and against the
// recipient's account (to; nil: not checked, so no credit overflow is
// found): chain.CheckTxAccounts, tx's nonce taken as following the pooled
// ones (the pool checks nonces itself, gaps allowed). The caller has made
// sure tx.Nonce > acc.Nonce.
func (p *Pool) payable(tx *chain.Transaction, acc chain.Account, pend chain.Amounts, to *chain.Account) error {
	var recipient chain.Account
	if to != nil {
		recipient = *to
	}
	return chain.CheckTxAccounts(&p.rules, tx, acc, recipient, chain.Pending{Txs: tx.Nonce - acc.Nonce - 1, Owed: pend})
}

// screenPool refuses, before the signature check, what the pool as it
// stands would refuse anyway: a known transaction, a used nonce, a gap too
// wide, a gapped transaction with no room in the queue. It changes
// nothing; admission checks again.
//
// tops holds, per sender seen in the batch, the end of the executable run
// as the batch so far would extend it. p.mu is held.
func (p *Pool) screenPool(tx *chain.Transaction, id chain.Hash, acc chain.Account, tops map[chain.Address]uint64) error {
	if _, ok := p.byID[id]; ok {
		return alreadyPooled(id)
	}
	s := p.senders[tx.From]
	if s != nil && s.checked != acc {
		return nil // the pool has not seen this state yet: leave it to admit
	}
	if s != nil {
		if i, found := s.find(tx.Nonce); found {
			return ruleErr(ErrNonceInUse, "%s already has transaction %s pooled at nonce %d", tx.From, s.txs[i].id, tx.Nonce)
		}
	}
	// The pool's run is walked once per sender and batch (it may be
	// thousands long: walked per transaction it was 6% of a loaded
	// devnet's CPU); tops then follows the batch.
	top, ok := tops[tx.From]
	if !ok {
		top = s.contiguousTop(acc.Nonce)
		tops[tx.From] = top
	}
	if err := p.checkGap(tx.Nonce, top); err != nil {
		return err
	}
	if tx.Nonce == top+1 {
		tops[tx.From] = tx.Nonce
		return nil
	}
	if s != nil && s.queued() >= p.cfg.AccountQueue {
		return ruleErr(ErrQueueFull, "%s already has %d gapped transactions pooled, the most per sender", tx.From, s.queued())
	}
	if p.nqueued >= p.queueLimit() && (len(p.queue) == 0 || p.queue[0].tx.Fee >= tx.Fee) {
		return ruleErr(ErrQueueFull, "%d gapped transactions are pooled, the limit, and none it may evict for this one (fee %d)", p.nqueued, tx.Fee)
	}
	return nil
}

// Add admits tx against the committed state st. It returns tx's id, also
// when it refuses tx; every refusal is a *chain.RuleError (see the package
// Err* sentinels and chain's).
func (p *Pool) Add(tx chain.Transaction, st StateView) (chain.Hash, error) {
	errs, _ := p.Admit([]chain.Transaction{tx}, st)
	return tx.ID(), errs[0]
}

// AddBatch admits txs in order, as Add would one by one, and returns one
// error (nil: admitted) per transaction.
func (p *Pool) AddBatch(txs []chain.Transaction, st StateView) []error {
	errs, _ := p.Admit(txs, st)
	return errs
}

// Admit admits txs in order, as Add would one by one: one error (nil:
// admitted) per transaction. ready is what became executable: the
// admitted transactions that are pending and the queued ones they
// promoted, each sender's in nonce order. That, and only that, is what the
// node should gossip. Signatures are verified in parallel, then the batch
// is admitted under a single lock. st must not change during the call; a
// caller that guards its state with a lock should use AdmitUnder, which
// verifies signatures outside it.
func (p *Pool) Admit(txs []chain.Transaction, st StateView) (errs []error, ready []chain.Transaction) {
	return p.AdmitUnder(txs, func(fn func(StateView)) { fn(st) })
}

// AdmitUnder is Admit for a caller whose state is guarded by a lock: view
// must call fn once with the state held steady (e.g. under the node's read
// lock). AdmitUnder calls view twice, briefly each time: to screen txs
// against the committed state (refusing, before any signature check, what
// the sender's account alone rules out), then to admit them. Signatures
// are verified between the two calls, in parallel, under no lock.
func (p *Pool) AdmitUnder(txs []chain.Transaction, view func(fn func(StateView))) (errs []error, ready []chain.Transaction) {
	return p.admitBatch(txs, Relayed, func(fn func(StateView)) {
		view(func(st StateView) {
			p.mu.Lock()
			defer p.mu.Unlock()
			fn(st)
		})
	})
}

// AdmitNewest is Admit for a caller whose state is a series of immutable views (the chain
// manager's snapshots): newest returns the latest, and is called with the
// pool locked, at each of the two looks. from says who brought txs (Origin).
// So no admission judges a sender by an older state than one the pool
// has already seen: a view taken before the lock could be overtaken, while
// waiting for it, by a commit another admission or Update brought in.
func (p *Pool) AdmitNewest(txs []chain.Transaction, from Origin, newest func() StateView) (errs []error, ready []chain.Transaction) {
	return p.admitBatch(txs, from, func(fn func(StateView)) {
		p.mu.Lock()
		defer p.mu.Unlock()
		fn(newest())
	})
}

// admitBatch screens, verifies and admits txs brought by from; locked
// calls fn with p.mu held and the state to judge by.
func (p *Pool) admitBatch(txs []chain.Transaction, from Origin, locked func(fn func(StateView))) (errs []error, ready []chain.Transaction) {
	errs = make([]error, len(txs))
	cs := make([]checked, len(txs))
	// Pooled transactions first, by id: gossip brings each transaction to
	// a node several times (a 4-node devnet under load refused two copies
	// for each one it took), and a copy should cost a lookup, not the
	// stateless rules.
	p.mu.Lock()
	for i := range txs {
		if _, ok := p.byID[txs[i].ID()]; ok {
			errs[i] = alreadyPooled(txs[i].ID())
		}
	}
	p.mu.Unlock()
	for i := range txs {
		if errs[i] == nil {
			cs[i], errs[i] = p.precheck(&txs[i])
		}
	}
	locked(func(st StateView) {
		tops := map[chain.Address]uint64{} // each sender's run, as the batch extends it
		for i := range txs {
			if errs[i] == nil {
				acc := st.Account(txs[i].From)
				if errs[i] = p.screen(&txs[i], acc); errs[i] == nil {
					errs[i] = p.screenPool(&txs[i], cs[i].id, acc, tops)
				}
			}
		}
	})
	// Every signature left in one batch check (bisected when one is bad),
	// under no lock.
	p.sigs.VerifyTxs(txs, errs)
	var promoted []*entry
	locked(func(st StateView) {
		now := p.now()
		p.expire(now)
		p.compact()
		for i := range txs {
			if errs[i] != nil {
				continue
			}
			var became []*entry
			became, errs[i] = p.admit(&txs[i], cs[i], from, st, now)
			promoted = append(promoted, became...)
		}
		for _, e := range promoted {
			// A later admission in the batch may have evicted or demoted it.
			if !e.gone && !e.queued {
				ready = append(ready, e.tx)
			}
		}
	})
	return errs, ready
}

// Reinsert puts back the transactions a reorg reverted (pass every
// reverted block's at once, in any order), then re-checks each sender they
// belong to against the new state st in nonce order, as Update does. They
// go in before the re-check so a sender's pooled transactions that follow
// them are not taken for gapped: the account nonce went back, and the
// reverted ones fill the run up to them. Transactions st has committed,
// that are pooled already, or whose nonce another pooled transaction holds
// are skipped; those that no longer pay are evicted (reported by the next
// Update). Stateless rules and signatures are checked again (the verifier's
// cache makes that cheap). The pool may go over its limits by what a reorg
// reverted, at most max_reorg blocks; admissions make room again.
func (p *Pool) Reinsert(txs []chain.Transaction, st StateView) {
	errs := make([]error, len(txs))
	cs := make([]checked, len(txs))
	for i := range txs {
		cs[i], errs[i] = p.precheck(&txs[i])
	}
	p.sigs.VerifyTxs(txs, errs)
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	// Per sender, what goes back; each sender is then put in and
	// re-checked in one step, so the victims heap never holds a sender
	// whose pending run changed without being put in its place.
	var order []chain.Address
	back := map[chain.Address][]*entry{}
	for i := range txs {
		tx := &txs[i]
		if errs[i] != nil {
			continue
		}
		if _, ok := p.byID[cs[i].id]; ok {
			continue
		}
		if _, ok := back[tx.From]; !ok {
			order = append(order, tx.From)
		}
		cost := txCost(tx)
		p.seq++
		back[tx.From] = append(back[tx.From], &entry{tx: *tx, id: cs[i].id, seq: p.seq, at: now, size: cs[i].size, debit: cost.Balance, unstake: cost.Stake, plain: plainTransfer(tx)})
	}
	for _, addr := range order {
		acc := st.Account(addr)
		s := p.senders[addr]
		if s == nil {
			s = &sender{addr: addr, checked: acc, ver: versionOf(st), hidx: -1}
		} else if s.older(st) {
			acc = s.checked // admissions already saw a later state
		}
		added := false
		for _, e := range back[addr] {
			if e.tx.Nonce <= acc.Nonce {
				continue // committed on the new branch too
			}
			j, found := s.find(e.tx.Nonce)
			if found {
				continue // the nonce is taken (or the same tx twice)
			}
			s.txs = slices.Insert(s.txs, j, e)
			s.count(e, 1)
			e.owner = s
			s.debit += e.debit
			s.unstake += e.unstake
			p.byID[e.id] = e
			p.bytes += int64(e.size)
			p.order = append(p.order, e)
			p.markQueued(e) // resync promotes what is executable
			added = true
		}
		if added {
			p.senders[addr] = s
			p.resync(s, acc, versionOf(st))
		}
	}
}

// txCost is what tx takes from its sender's balance and stake, by the
// chain's table of types. Admission ran CheckStateless, which rules out an
// unknown type and amount + fee overflowing.
func txCost(tx *chain.Transaction) chain.Amounts {
	c, _ := tx.Cost()
	return c
}

// admit runs the stateful pool rules and pools tx, making room if it must.
// It returns the entries that became pending. p.mu is held.
func (p *Pool) admit(tx *chain.Transaction, c checked, from Origin, st StateView, now time.Time) ([]*entry, error) {
	if _, ok := p.byID[c.id]; ok {
		return nil, alreadyPooled(c.id)
	}
	acc := st.Account(tx.From)
	if tx.Nonce <= acc.Nonce {
		return nil, ruleErr(chain.ErrBadNonce, "nonce %d already used: account %s is at nonce %d", tx.Nonce, tx.From, acc.Nonce)
	}
	s := p.senders[tx.From]
	ver := versionOf(st) // of the state acc comes from
	switch {
	case s == nil:
	case s.older(st), acc.Nonce < s.checked.Nonce:
		// The pool saw a later state of this sender: judge tx by it. Or
		// a reorg took the nonce back and the node has not yet put the
		// reverted transactions back (Reinsert): going back now would
		// evict the sender's later nonces as gapped; Reinsert and Update
		// bring the sender in line.
		acc, ver = s.checked, s.ver
		if tx.Nonce <= acc.Nonce {
			return nil, ruleErr(chain.ErrBadNonce, "nonce %d already used: account %s is at nonce %d", tx.Nonce, tx.From, acc.Nonce)
		}
	case s.checked != acc:
		// st moved on since the last Update: bring this sender in line
		// first (what st committed is no longer pooled).
		p.catchUp(s, acc, ver)
		s = p.senders[tx.From]
	default:
		s.ver = max(s.ver, ver) // the same account, seen in a later state
	}
	top := acc.Nonce
	if s != nil {
		if i, found := s.find(tx.Nonce); found {
			return nil, ruleErr(ErrNonceInUse, "%s already has transaction %s pooled at nonce %d", tx.From, s.txs[i].id, tx.Nonce)
		}
		top += uint64(s.npend)
	}
	if err := p.checkGap(tx.Nonce, top); err != nil {
		return nil, err
	}
	var pend chain.Amounts
	if s != nil {
		pend = chain.Amounts{Balance: s.debit, Stake: s.unstake}
	}
	// The recipient as committed: a credit that would overflow it now
	// would make the block refuse the transaction.
	to := st.Account(tx.To)
	if err := p.payable(tx, acc, pend, &to); err != nil {
		return nil, err
	}
	cost := txCost(tx)
	debit, unstake := cost.Balance, cost.Stake
	pending := tx.Nonce == top+1
	if !pending && s != nil && s.queued() >= p.cfg.AccountQueue {
		return nil, ruleErr(ErrQueueFull, "%s already has %d gapped transactions pooled, the most per sender", tx.From, s.queued())
	}
	newPend := 1
	if s != nil {
		newPend += s.npend
	}
	if err := p.makeRoom(tx, c.size, from, pending, newPend); err != nil {
		return nil, err
	}

	p.seq++
	e := &entry{tx: *tx, id: c.id, seq: p.seq, at: now, size: c.size, debit: debit, unstake: unstake, plain: plainTransfer(tx)}
	if s = p.senders[tx.From]; s == nil { // makeRoom may have emptied it
		s = &sender{addr: tx.From, checked: acc, ver: ver, hidx: -1}
	}
	s.active = now
	p.order = append(p.order, e)
	return p.insert(s, e, now), nil
}

// insert pools e in its sender s (added to p.senders if new) and returns
// the entries that became pending: e and the queued ones it promoted.
// p.mu is held.
func (p *Pool) insert(s *sender, e *entry, now time.Time) []*entry {
	p.senders[s.addr] = s
	e.owner, e.gone = s, false
	i, _ := s.find(e.tx.Nonce)
	s.txs = slices.Insert(s.txs, i, e)
	s.count(e, 1)
	s.debit += e.debit
	s.unstake += e.unstake
	p.byID[e.id] = e
	p.bytes += int64(e.size)
	var became []*entry
	if i == s.npend && e.tx.Nonce == s.checked.Nonce+1+uint64(s.npend) {
		for s.npend < len(s.txs) && s.txs[s.npend].tx.Nonce == s.checked.Nonce+1+uint64(s.npend) {
			p.markPending(s.txs[s.npend], now)
			became = append(became, s.txs[s.npend])
			s.npend++
		}
		s.active = now
		p.victims.update(s)
	} else {
		p.markQueued(e)
	}
	return became
}

// markPending moves e (new or queued) to pending. p.mu is held.
func (p *Pool) markPending(e *entry, now time.Time) {
	if e.queued {
		p.queue.remove(e)
		p.nqueued--
	}
	e.queued = false
	e.epoch++
	e.since = now
	p.pend = append(p.pend, pendSlot{e, e.epoch})
}

// markQueued moves e (new or pending) to the queue. p.mu is held.
func (p *Pool) markQueued(e *entry) {
	e.queued = true
	e.epoch++
	p.queue.push(e)
	p.nqueued++
}

// removeAt drops s.txs[i] from the pool; pending entries after it become
// queued (the nonce gap it leaves). It does not record an eviction.
// p.mu is held.
func (p *Pool) removeAt(s *sender, i int) *entry {
	e := s.txs[i]
	if i < s.npend {
		for _, later := range s.txs[i+1 : s.npend] {
			p.markQueued(later)
		}
		s.npend = i
	}
	s.txs = slices.Delete(s.txs, i, i+1)
	s.count(e, -1)
	s.debit -= e.debit
	s.unstake -= e.unstake
	p.drop(e)
	p.victims.update(s)
	if len(s.txs) == 0 {
		delete(p.senders, s.addr)
	}
	return e
}

// drop removes e from the indexes (not from its sender's list).
// p.mu is held.
func (p *Pool) drop(e *entry) {
	if e.queued {
		p.queue.remove(e)
		p.nqueued--
		e.queued = false
	}
	e.gone = true
	e.epoch++
	delete(p.byID, e.id)
	p.bytes -= int64(e.size)
	p.dead++
}

// compact reclaims the tombstones of order and the stale slots of pend
// once they outnumber the live ones. It is not called while makeRoom may
// still put entries back. p.mu is held.
func (p *Pool) compact() {
	if p.dead > 1024 && p.dead > len(p.order)/2 {
		p.order = slices.DeleteFunc(p.order, func(e *entry) bool { return e.gone })
		p.dead = 0
	}
	if live := len(p.byID) - p.nqueued; len(p.pend)-p.pendHead > 2*live+1024 {
		kept := make([]pendSlot, 0, live)
		for _, s := range p.pend[p.pendHead:] {
			if s.valid() {
				kept = append(kept, s)
			}
		}
		p.pend, p.pendHead = kept, 0
	}
}

// checkGap refuses a nonce that leaves more than maxGap missing nonces
// after top, the end of the sender's contiguous run (its account nonce when
// nothing is pooled). A long run of consecutive nonces is no gap at all.
func (p *Pool) checkGap(nonce, top uint64) error {
	if nonce > top && nonce-top-1 > p.cfg.MaxNonceGap {
		return ruleErr(ErrNonceGap, "nonce %d leaves %d nonces missing after %d (at most %d)", nonce, nonce-top-1, top, p.cfg.MaxNonceGap)
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
	if n == s.checked.Nonce {
		// The run is the pending transactions: txs[:npend] hold nonces
		// checked.Nonce+1 on, and the next is never contiguous (pending
		// and queued are kept apart). No walk over a long run.
		return n + uint64(s.npend)
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
	return p.payable(tx, acc, chain.Amounts{Balance: debit, Stake: unstake}, nil)
}

// resync brings sender s in line with its committed account acc: it drops
// what acc has committed (nonce ≤ account nonce), evicts (recording why)
// what the account can no longer pay for or what now lies beyond the gap
// bound, walking in nonce order, and re-sorts the rest into pending and
// queued. p.mu is held.
func (p *Pool) resync(s *sender, acc chain.Account, ver uint64) {
	now := p.now()
	if acc.Nonce != s.checked.Nonce {
		s.active = now
	}
	kept := s.txs[:0]
	var debit, unstake uint64
	top := acc.Nonce // highest nonce of the contiguous run so far
	for _, e := range s.txs {
		if e.tx.Nonce <= acc.Nonce {
			p.drop(e) // committed
			continue
		}
		if err := p.recheck(e, acc, top, debit, unstake); err != nil {
			p.drop(e)
			p.evict(e, err)
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
	s.txs, s.debit, s.unstake, s.checked = kept, debit, unstake, acc
	s.others = 0
	for _, e := range kept {
		s.count(e, 1)
	}
	s.ver = max(s.ver, ver)
	s.npend = 0
	for i, e := range kept {
		pend := i == s.npend && e.tx.Nonce == acc.Nonce+1+uint64(i)
		if pend {
			s.npend++
		}
		switch {
		case pend && e.queued:
			p.markPending(e, now)
		case !pend && !e.queued:
			p.markQueued(e)
		}
	}
	p.victims.update(s)
	if len(kept) == 0 {
		delete(p.senders, s.addr)
	}
}

// catchUp brings sender s, whose pending and queued marks are in order,
// in line with its committed account acc (resync), taking the shortcut
// when the block took only its oldest transfers (committedTransfers).
// p.mu is held.
func (p *Pool) catchUp(s *sender, acc chain.Account, ver uint64) {
	if k, debit, ok := committedTransfers(s, acc); ok {
		if acc.Nonce != s.checked.Nonce {
			s.active = p.now()
		}
		p.dropCommitted(s, k, debit, acc, ver)
		return
	}
	p.resync(s, acc, ver)
}

// committedTransfers reports whether acc is s.checked after the first k
// of s's pending transactions (debit in all) and nothing else but coins
// received, while every one of s's transactions is a pending transfer to
// another account: the common case of a block that took a sender's
// oldest transfers. Then every transaction left finds the nonce and at
// least the balance it was checked against, so each still passes (a
// transfer asks of its sender only the nonce and the balance; the pool
// does not check its recipient again; with nothing queued there is no
// gap to bound), and resync need not check each again: the work follows
// the block, not the sender's backlog.
func committedTransfers(s *sender, acc chain.Account) (k int, debit uint64, ok bool) {
	if s.npend != len(s.txs) || acc.Nonce < s.checked.Nonce || acc.Nonce-s.checked.Nonce > uint64(s.npend) {
		return 0, 0, false
	}
	if s.others != 0 {
		return 0, 0, false
	}
	k = int(acc.Nonce - s.checked.Nonce)
	for _, e := range s.txs[:k] {
		debit += e.debit
	}
	if debit > s.checked.Balance {
		return 0, 0, false
	}
	want := s.checked
	want.Nonce, want.Balance = acc.Nonce, s.checked.Balance-debit
	got := acc
	got.Balance = want.Balance
	return k, debit, got == want && acc.Balance >= want.Balance
}

// dropCommitted is resync when committedTransfers said yes: it drops the
// first k (committed) transactions of s and keeps the rest as they are.
// p.mu is held.
func (p *Pool) dropCommitted(s *sender, k int, debit uint64, acc chain.Account, ver uint64) {
	for _, e := range s.txs[:k] {
		p.drop(e)
	}
	s.txs = slices.Delete(s.txs, 0, k)
	s.npend -= k
	s.debit -= debit
	s.checked = acc
	s.ver = max(s.ver, ver)
	p.victims.update(s)
	if len(s.txs) == 0 {
		delete(p.senders, s.addr)
	}
}

// Update brings the pool in line with a new committed state st, after a
// block or a reorg. For each changed sender it drops what st has committed
// (nonce ≤ account nonce), then walks the remaining transactions in nonce
// order and evicts those the account can no longer pay for, or whose nonce
// is now more than the gap bound beyond the account's; what is left is
// sorted again into pending and queued. A sender whose account moved only
// by its oldest pooled transfers (and coins received) just drops those:
// the rest cannot have stopped paying (catchUp), so a block costs what it
// committed, not the senders' backlogs. Idle senders' queued transactions
// expire. It returns every eviction since the last Update (these, fee
// evictions by admissions, expiries), oldest arrival first; committed
// transactions are not reported.
func (p *Pool) Update(st StateView) []Eviction {
	p.mu.Lock()
	defer p.mu.Unlock()
	ver := versionOf(st)
	for addr, s := range p.senders {
		if s.older(st) {
			continue // admissions already judged it by a later state
		}
		if acc := st.Account(addr); acc != s.checked {
			p.catchUp(s, acc, ver)
		} else {
			s.ver = max(s.ver, ver)
		}
	}
	p.lastExp = time.Time{}
	p.expire(p.now())
	p.compact()
	if len(p.evicted) == 0 {
		return nil
	}
	slices.SortStableFunc(p.evicted, func(a, b evicted) int { return compareSeq(a.seq, b.seq) })
	out := make([]Eviction, len(p.evicted))
	for i, ev := range p.evicted {
		out[i] = ev.Eviction
	}
	p.evicted = nil
	return out
}

// evicted is an Eviction with the arrival of its transaction.
type evicted struct {
	Eviction
	seq uint64
}

// evict records why e (already dropped) left the pool. The record is
// bounded: past Limit records, the oldest are forgotten. p.mu is held.
func (p *Pool) evict(e *entry, err error) {
	if len(p.evicted) >= p.limit {
		p.evicted = slices.Delete(p.evicted, 0, len(p.evicted)/2)
	}
	p.evicted = append(p.evicted, evicted{Eviction{Tx: e.tx, Err: err}, e.seq})
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

// expire drops the queued transactions of senders idle for longer than
// Lifetime, at most once per expireEvery. p.mu is held.
func (p *Pool) expire(now time.Time) {
	if p.nqueued == 0 || now.Sub(p.lastExp) < expireEvery {
		return
	}
	p.lastExp = now
	for _, s := range p.senders {
		if s.queued() == 0 || now.Sub(s.active) <= p.cfg.Lifetime {
			continue
		}
		for i := len(s.txs) - 1; i >= s.npend; i-- {
			e := p.removeAt(s, i)
			p.evict(e, ruleErr(ErrExpired, "gapped for more than %s with no news from %s", p.cfg.Lifetime, s.addr))
		}
	}
}

// cursor walks one sender's executable run during Pending.
type cursor struct {
	s          *sender
	i          int    // index in s.txs of the next transaction
	fee        uint64 // its fee
	seq        uint64 // its arrival
	bal, stake uint64 // what the account has left for it
}

// Pending returns up to max transactions that can execute in order on st:
// for each sender the contiguous run from account nonce + 1 that the
// account can pay for (pending credits not counted), the senders
// interleaved by the fee of their next transaction, highest first, then
// by its arrival, oldest first. Taken in the order returned, every
// transaction's nonce follows its sender's previous one. max ≤ 0 returns
// nothing.
// Each transaction carries its cached id, so a block built of them hashes
// none again.
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
		c := cursor{s: s, i: i, fee: s.txs[i].tx.Fee, seq: s.txs[i].seq, bal: acc.Balance, stake: acc.Stake}
		if c.payable() {
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
		if c.i < len(c.s.txs) && c.s.txs[c.i].tx.Nonce == e.tx.Nonce+1 && c.payable() {
			c.fee, c.seq = c.s.txs[c.i].tx.Fee, c.s.txs[c.i].seq
			h.down(0)
		} else {
			h.pop()
		}
	}
	return out
}

// payable reports whether the account behind c can run c's next
// transaction. The rest of chain.CheckTx (fee floor, exchange policy,
// credits) was checked at admission; the block checks all of it again.
func (c *cursor) payable() bool {
	e := c.s.txs[c.i]
	return e.debit <= c.bal && e.unstake <= c.stake
}

// cursorHeap is a heap of cursors: highest fee, then oldest arrival, first.
type cursorHeap []cursor

func (h cursorHeap) less(i, j int) bool {
	if h[i].fee != h[j].fee {
		return h[i].fee > h[j].fee
	}
	return h[i].seq < h[j].seq
}

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
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
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
// never stalls on it. Later nonces of the same sender stay, queued behind
// the gap.
func (p *Pool) Remove(ids ...chain.Hash) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		e, ok := p.byID[id]
		if !ok {
			continue
		}
		s := e.owner
		if i, found := s.find(e.tx.Nonce); found {
			p.removeAt(s, i)
		}
	}
}
