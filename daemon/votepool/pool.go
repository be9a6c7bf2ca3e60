// Package votepool keeps the finality votes a node has seen and not yet
// seen included in its branch (the v3 rules, docs/CONSENSUS.md), for its forger to put
// in blocks. It is bounded per voter, in count and in bytes; it drops
// votes that can no longer count (target at or below the final height, or
// too far below the head); and it watches every voter's recent votes for
// double and surround pairs, which it reports so the node can make
// slashing evidence.
//
// The pool trusts its caller for signatures: gossip batch-verifies them
// before Add (daemon/p2p), and blocks are checked by the chain before
// Committed. It knows nothing of branches: a block's votes leave the pool
// when the block joins the main chain (Committed) and come back when it
// leaves it (Reverted); whether a vote may go in a block on this branch is
// the includable callback's question (Select).
package votepool

import (
	"cmp"
	"container/list"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/poslab/posd/chain"
)

// Defaults of Config's zero fields.
const (
	DefaultMaxPerVoter = 8
	DefaultMaxVotes    = 16384
	DefaultMaxBytes    = 4 << 20
	// DefaultStaleDepth: a vote whose target is more than this many
	// heights below the head is dropped (blocks carry votes up to
	// max_reorg heights after their target).
	DefaultStaleDepth = 64
	// DefaultHistory is how many recent votes per voter are kept for
	// double and surround detection, and DefaultHistoryVoters how many
	// voters (least recently seen forgotten first): at most about
	// 1024 × 64 × 250 bytes = 16 MiB, reached only with that many staked
	// voters (Config.Known keeps others out).
	DefaultHistory       = 64
	DefaultHistoryVoters = 1024
)

// entryBytes is what one pooled vote costs in memory: its fields plus the
// map and index entries that hold it (an estimate; votes are fixed size).
const entryBytes = chain.EncodedVoteLen + 160

// Outcomes of Add, for metrics (votes by outcome).
const (
	OutcomeAdded          = "added"
	OutcomeDuplicate      = "duplicate"
	OutcomeIncluded       = "included"
	OutcomeStaleFinalized = "stale_finalized"
	OutcomeStaleOld       = "stale_old"
	OutcomeVoterFull      = "voter_full"
	OutcomePoolFull       = "pool_full"
	OutcomeBadVote        = "bad_vote"
	OutcomeUnknownVoter   = "unknown_voter"
)

// Outcomes lists every outcome Add counts, in a fixed order.
var Outcomes = []string{OutcomeAdded, OutcomeDuplicate, OutcomeIncluded, OutcomeStaleFinalized,
	OutcomeStaleOld, OutcomeVoterFull, OutcomePoolFull, OutcomeBadVote, OutcomeUnknownVoter}

// Error is a refusal by Add; Outcome is its code.
type Error struct {
	Outcome string
	Msg     string
}

func (e *Error) Error() string { return "votepool: " + e.Outcome + ": " + e.Msg }

// Is matches any *Error of the same outcome (errors.Is(err, ErrStaleOld)).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Outcome == e.Outcome
}

// Sentinels for errors.Is.
var (
	ErrDuplicate      = &Error{Outcome: OutcomeDuplicate}
	ErrIncluded       = &Error{Outcome: OutcomeIncluded}
	ErrStaleFinalized = &Error{Outcome: OutcomeStaleFinalized}
	ErrStaleOld       = &Error{Outcome: OutcomeStaleOld}
	ErrVoterFull      = &Error{Outcome: OutcomeVoterFull}
	ErrPoolFull       = &Error{Outcome: OutcomePoolFull}
	ErrBadVote        = &Error{Outcome: OutcomeBadVote}
	ErrUnknownVoter   = &Error{Outcome: OutcomeUnknownVoter}
)

// OutcomeOf is the outcome of an Add that returned err.
func OutcomeOf(err error) string {
	if err == nil {
		return OutcomeAdded
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Outcome
	}
	return "error"
}

func refuse(outcome, format string, args ...any) error {
	return &Error{Outcome: outcome, Msg: fmt.Sprintf(format, args...)}
}

// Config configures a Pool. Only ChainID is required.
type Config struct {
	ChainID       string
	MaxPerVoter   int    // votes per voter in the pool (DefaultMaxPerVoter)
	MaxVotes      int    // votes in the pool (DefaultMaxVotes)
	MaxBytes      int    // bytes the pool's votes may take (DefaultMaxBytes)
	StaleDepth    uint64 // DefaultStaleDepth
	History       int    // recent votes kept per voter for slashing (DefaultHistory)
	HistoryVoters int    // voters whose history is kept (DefaultHistoryVoters)
	// MaxIncluded bounds the ids of votes seen included on the branch
	// (default 4 × MaxVotes); they are forgotten once stale anyway.
	MaxIncluded int

	// VotesOf returns the votes a block carries (b.Votes once blocks
	// carry them); nil: blocks carry none.
	VotesOf func(b *chain.Block) []chain.Vote
	// Known, if set, says whether a voter may vote at all (has stake):
	// others are refused (unknown_voter) and not remembered.
	Known func(voter chain.Address) bool
	// OnSlashable is called, outside the pool's lock, with a pair of one
	// voter's votes that are slashable (kind: KindDoubleVote or
	// KindSurroundVote); a is the vote seen before. At most one pair is
	// reported per newly seen vote.
	OnSlashable func(a, b chain.Vote, kind string)
	// OnOutcome, if set, is called with the outcome of every Add.
	OnOutcome func(outcome string)
}

type entry struct {
	v     chain.Vote
	id    chain.Hash
	voter chain.Address
}

// voterHist is a voter's recent votes (at most cfg.History, the lowest
// targets forgotten first).
type voterHist struct {
	voter chain.Address
	votes []chain.Vote
	ids   []chain.Hash
}

// Pool is a bounded vote pool. Safe for concurrent use.
type Pool struct {
	cfg Config

	mu        sync.Mutex
	votes     map[chain.Hash]*entry
	byVoter   map[chain.Address][]*entry
	bytes     int
	included  map[chain.Hash]uint64 // vote id → target height
	hist      map[chain.Address]*list.Element
	histLRU   *list.List // of *voterHist, most recently seen at the front
	head      uint64
	finalized uint64

	counts map[string]*atomic.Uint64
	// Slashable counts the pairs reported, by kind order: double, surround.
	slashable [2]atomic.Uint64
}

// New returns an empty pool.
func New(cfg Config) *Pool {
	if cfg.MaxPerVoter <= 0 {
		cfg.MaxPerVoter = DefaultMaxPerVoter
	}
	if cfg.MaxVotes <= 0 {
		cfg.MaxVotes = DefaultMaxVotes
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.StaleDepth == 0 {
		cfg.StaleDepth = DefaultStaleDepth
	}
	if cfg.History <= 0 {
		cfg.History = DefaultHistory
	}
	if cfg.HistoryVoters <= 0 {
		cfg.HistoryVoters = DefaultHistoryVoters
	}
	if cfg.MaxIncluded <= 0 {
		cfg.MaxIncluded = 4 * cfg.MaxVotes
	}
	p := &Pool{
		cfg:      cfg,
		votes:    map[chain.Hash]*entry{},
		byVoter:  map[chain.Address][]*entry{},
		included: map[chain.Hash]uint64{},
		hist:     map[chain.Address]*list.Element{},
		histLRU:  list.New(),
		counts:   map[string]*atomic.Uint64{},
	}
	for _, o := range Outcomes {
		p.counts[o] = new(atomic.Uint64)
	}
	return p
}

// slashReport is a pair found under the lock, reported after it.
type slashReport struct {
	a, b chain.Vote
	kind string
}

// Add offers one vote whose signature the caller verified. It returns nil
// when the vote entered the pool, else an *Error saying why not. Whatever
// the answer, a vote of a known voter is checked against that voter's
// recent votes, and a slashable pair is reported (OnSlashable).
func (p *Pool) Add(v chain.Vote) error {
	rep, err := p.add(&v)
	p.count(OutcomeOf(err))
	p.report(rep)
	return err
}

// AddBatch is Add for each vote; it returns one error per vote.
func (p *Pool) AddBatch(votes []chain.Vote) []error {
	errs := make([]error, len(votes))
	for i := range votes {
		errs[i] = p.Add(votes[i])
	}
	return errs
}

func (p *Pool) add(v *chain.Vote) (*slashReport, error) {
	if err := v.CheckStateless(); err != nil {
		return nil, refuse(OutcomeBadVote, "%v", err)
	}
	voter := v.Voter()
	if p.cfg.Known != nil && !p.cfg.Known(voter) {
		return nil, refuse(OutcomeUnknownVoter, "%s has no stake", voter)
	}
	id := v.ID(p.cfg.ChainID)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.votes[id]; ok {
		return nil, refuse(OutcomeDuplicate, "vote %x is pooled", id[:8])
	}
	if _, ok := p.included[id]; ok {
		return nil, refuse(OutcomeIncluded, "vote %x is on the branch", id[:8])
	}
	rep := p.remember(v, id, voter)
	if err := p.staleErr(v); err != nil {
		return rep, err
	}
	return rep, p.insert(v, id, voter)
}

// staleErr says why v can no longer count, or nil. p.mu is held.
func (p *Pool) staleErr(v *chain.Vote) error {
	if v.Target.Height <= p.finalized {
		return refuse(OutcomeStaleFinalized, "target %d at or below final height %d", v.Target.Height, p.finalized)
	}
	if v.Target.Height+p.cfg.StaleDepth < p.head {
		return refuse(OutcomeStaleOld, "target %d more than %d below head %d", v.Target.Height, p.cfg.StaleDepth, p.head)
	}
	return nil
}

// insert puts a fresh, not stale vote in the pool, making room within its
// voter's share by forgetting the voter's lowest target when v's is
// higher. p.mu is held.
func (p *Pool) insert(v *chain.Vote, id chain.Hash, voter chain.Address) error {
	mine := p.byVoter[voter]
	if len(mine) >= p.cfg.MaxPerVoter {
		low := 0
		for i, e := range mine {
			if e.v.Target.Height < mine[low].v.Target.Height {
				low = i
			}
		}
		if mine[low].v.Target.Height >= v.Target.Height {
			return refuse(OutcomeVoterFull, "%s has %d votes pooled, all with targets at or above %d", voter, len(mine), v.Target.Height)
		}
		p.remove(mine[low].id)
	}
	if len(p.votes) >= p.cfg.MaxVotes || p.bytes+entryBytes > p.cfg.MaxBytes {
		return refuse(OutcomePoolFull, "%d votes, %d bytes pooled", len(p.votes), p.bytes)
	}
	e := &entry{v: *v, id: id, voter: voter}
	p.votes[id] = e
	p.byVoter[voter] = append(p.byVoter[voter], e)
	p.bytes += entryBytes
	return nil
}

// remove takes a vote out of the pool. p.mu is held.
func (p *Pool) remove(id chain.Hash) bool {
	e, ok := p.votes[id]
	if !ok {
		return false
	}
	delete(p.votes, id)
	p.bytes -= entryBytes
	mine := slices.DeleteFunc(p.byVoter[e.voter], func(x *entry) bool { return x == e })
	if len(mine) == 0 {
		delete(p.byVoter, e.voter)
	} else {
		p.byVoter[e.voter] = mine
	}
	return true
}

// remember checks v against its voter's recent votes, then records it,
// and returns the first slashable pair found. p.mu is held.
func (p *Pool) remember(v *chain.Vote, id chain.Hash, voter chain.Address) *slashReport {
	var h *voterHist
	if el, ok := p.hist[voter]; ok {
		p.histLRU.MoveToFront(el)
		h = el.Value.(*voterHist)
	} else {
		if p.histLRU.Len() >= p.cfg.HistoryVoters {
			old := p.histLRU.Remove(p.histLRU.Back()).(*voterHist)
			delete(p.hist, old.voter)
		}
		h = &voterHist{voter: voter}
		p.hist[voter] = p.histLRU.PushFront(h)
	}
	if slices.Contains(h.ids, id) {
		return nil
	}
	var rep *slashReport
	for i := range h.votes {
		if kind, ok := Slashable(&h.votes[i], v); ok {
			rep = &slashReport{a: h.votes[i], b: *v, kind: kind}
			break
		}
	}
	if len(h.votes) >= p.cfg.History {
		low := 0
		for i := range h.votes {
			if h.votes[i].Target.Height < h.votes[low].Target.Height {
				low = i
			}
		}
		if h.votes[low].Target.Height >= v.Target.Height {
			return rep // older than everything remembered: checked, not kept
		}
		h.votes = slices.Delete(h.votes, low, low+1)
		h.ids = slices.Delete(h.ids, low, low+1)
	}
	h.votes = append(h.votes, *v)
	h.ids = append(h.ids, id)
	return rep
}

func (p *Pool) report(rep *slashReport) {
	if rep == nil {
		return
	}
	if rep.kind == KindDoubleVote {
		p.slashable[0].Add(1)
	} else {
		p.slashable[1].Add(1)
	}
	if p.cfg.OnSlashable != nil {
		p.cfg.OnSlashable(rep.a, rep.b, rep.kind)
	}
}

func (p *Pool) count(outcome string) {
	if c := p.counts[outcome]; c != nil {
		c.Add(1)
	}
	if p.cfg.OnOutcome != nil {
		p.cfg.OnOutcome(outcome)
	}
}

// Committed takes the votes of b, which joined the main chain, out of the
// pool (they are on the branch now, and are refused while they stay
// there), checks them for slashable pairs like gossiped votes, and moves
// the head to b's height. Call it for every block the chain applies, in
// order, after the block is committed.
func (p *Pool) Committed(b *chain.Block) {
	var votes []chain.Vote
	if p.cfg.VotesOf != nil {
		votes = p.cfg.VotesOf(b)
	}
	var reps []*slashReport
	p.mu.Lock()
	for i := range votes {
		v := &votes[i]
		id := v.ID(p.cfg.ChainID)
		p.remove(id)
		if len(p.included) < p.cfg.MaxIncluded {
			p.included[id] = v.Target.Height
		}
		if rep := p.remember(v, id, v.Voter()); rep != nil {
			reps = append(reps, rep)
		}
	}
	p.head = b.Height
	p.prune()
	p.mu.Unlock()
	for _, r := range reps {
		p.report(r)
	}
}

// Reverted puts the votes of b, which left the main chain, back in the
// pool (those still fresh, within the caps) and moves the head to b's
// parent's height. Call it for every block a reorg reverts, from the old
// head down, before Committed for the new branch's blocks.
func (p *Pool) Reverted(b *chain.Block) {
	var votes []chain.Vote
	if p.cfg.VotesOf != nil {
		votes = p.cfg.VotesOf(b)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if b.Height > 0 {
		p.head = b.Height - 1
	}
	for i := range votes {
		v := &votes[i]
		id := v.ID(p.cfg.ChainID)
		delete(p.included, id)
		if _, ok := p.votes[id]; ok || v.CheckStateless() != nil || p.staleErr(v) != nil {
			continue
		}
		_ = p.insert(v, id, v.Voter()) // full: the vote is lost here, as a gossiped one would be
	}
}

// SetHead sets the head's height and drops the votes it made stale.
func (p *Pool) SetHead(h uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.head = h
	p.prune()
}

// SetFinalized sets the final height and drops the votes it made stale.
// The final height never goes down (a lower h is ignored).
func (p *Pool) SetFinalized(h uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h > p.finalized {
		p.finalized = h
		p.prune()
	}
}

// prune drops stale votes and the stale ids of included votes. p.mu is held.
func (p *Pool) prune() {
	for id, e := range p.votes {
		if p.staleErr(&e.v) != nil {
			p.remove(id)
		}
	}
	for id, t := range p.included {
		if t <= p.finalized || t+p.cfg.StaleDepth < p.head {
			delete(p.included, id)
		}
	}
}

// Select returns up to max pooled votes for a block, newest targets first
// (then higher sources, then by id, so forgers agree), skipping those
// includable refuses (it says whether the vote may go in the block being
// built: source justified on its branch, not yet included, ...). The pool
// is not changed: votes leave it when the block is committed. includable
// is called without the pool's lock held.
func (p *Pool) Select(max int, includable func(*chain.Vote) error) []chain.Vote {
	if max <= 0 {
		return nil
	}
	p.mu.Lock()
	all := make([]*entry, 0, len(p.votes))
	for _, e := range p.votes {
		all = append(all, e)
	}
	p.mu.Unlock()
	slices.SortFunc(all, func(a, b *entry) int {
		if c := cmp.Compare(b.v.Target.Height, a.v.Target.Height); c != 0 {
			return c
		}
		if c := cmp.Compare(b.v.Source.Height, a.v.Source.Height); c != 0 {
			return c
		}
		return slices.Compare(a.id[:], b.id[:])
	})
	out := make([]chain.Vote, 0, min(max, len(all)))
	for _, e := range all {
		if len(out) == max {
			break
		}
		if includable != nil && includable(&e.v) != nil {
			continue
		}
		out = append(out, e.v)
	}
	return out
}

// Len is the number of pooled votes; Bytes what they take.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.votes)
}

// Bytes is the memory the pooled votes take (an estimate).
func (p *Pool) Bytes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bytes
}

// Has reports whether the vote with id is pooled.
func (p *Pool) Has(id chain.Hash) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.votes[id]
	return ok
}

// Stats is a snapshot of the pool's counters.
type Stats struct {
	Votes, Bytes int
	// Outcomes counts Add's answers by outcome (every key of Outcomes).
	Outcomes map[string]uint64
	// DoubleVotes and SurroundVotes count the pairs reported.
	DoubleVotes, SurroundVotes uint64
}

// Stats returns the counters.
func (p *Pool) Stats() Stats {
	s := Stats{Outcomes: make(map[string]uint64, len(p.counts))}
	s.Votes, s.Bytes = p.Len(), p.Bytes()
	for o, c := range p.counts {
		s.Outcomes[o] = c.Load()
	}
	s.DoubleVotes, s.SurroundVotes = p.slashable[0].Load(), p.slashable[1].Load()
	return s
}
