// Package voter is the honest finality voter (DESIGN "v3 rules", honest
// voter). On every new head, for every local key with stake, it votes for
// the link from the highest justified checkpoint on the head's branch (the
// source) to the newest checkpoint on it (the target), but only when that
// target is higher and that source no lower than the key's last vote's.
// The last vote is written to the store and fsynced before the signature
// is made, so no crash, restart or reorg ever makes a key sign two votes
// that form a double or surround pair: a vote signed after a restart is
// checked against the record, which is at least as new as every vote
// signed before the crash. A crash between the write and the signature
// loses that one vote, never safety.
package voter

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/store"
)

// Chain is what the voter reads of the node's chain. A chain manager's
// snapshot implements it; tests use a model.
type Chain interface {
	// Tip returns the head and the highest justified checkpoint on the
	// head's branch, read together.
	Tip() (head, justified chain.Checkpoint)
	// HashAt returns the hash of the block at height on the branch that
	// ends at the block head (false if head or the height is unknown).
	HashAt(head chain.Hash, height uint64) (chain.Hash, bool)
	// StakeOf is the stake of addr in the head's state: a key without
	// stake does not vote.
	StakeOf(addr chain.Address) uint64
}

// Store keeps each key's last vote; *store.Store implements it.
// AdvanceLastVotes must refuse, per key, a link that does not advance the
// record (errs[i]: store.ErrVoteRegress), and return only once the
// records it took are durable (one transaction for all keys).
type Store interface {
	LastVote(voter chain.Address) (store.LastVote, bool, error)
	AdvanceLastVotes(voters []chain.Address, lvs []store.LastVote) (errs []error, err error)
}

// Outcomes of a key's turn on a head, for metrics.
const (
	OutcomeSigned        = "signed"
	OutcomeNoStake       = "no_stake"
	OutcomeNoLink        = "no_link"      // target not above source (the head is the justified checkpoint)
	OutcomeNotHigher     = "not_higher"   // target not above the last vote's
	OutcomeSourceLower   = "source_lower" // source below the last vote's (a reorg to a less justified branch)
	OutcomeUnknownTarget = "no_target"    // the chain could not name the target's hash
	OutcomeStoreFailed   = "store_failed" // the record could not be written: no vote
	OutcomeDisabled      = "key_disabled" // the key's record is unreadable: the key never votes until restart
)

// Config configures a Voter.
type Config struct {
	ChainID     string
	EpochBlocks uint64 // genesis epoch_blocks (0 is taken as 1)
	Keys        []ed25519.PrivateKey
	Chain       Chain
	Store       Store
	// Publish gets each head's new votes (to the vote pool and the vote
	// outbox); nil drops them. It is called with the voter's lock held,
	// so votes reach it in signing order; it must not call the voter.
	Publish func(votes []chain.Vote)
	// OnOutcome, if set, is called with each key's outcome on each head.
	OnOutcome func(outcome string)
	Logger    *slog.Logger
}

type key struct {
	priv ed25519.PrivateKey
	addr chain.Address
	last store.LastVote
	has  bool
	// disabled: the record could not be read; voting without it could
	// contradict a vote signed before, so the key sits out.
	disabled bool
}

// Voter signs the node's votes. Safe for concurrent use; heads are
// handled one at a time.
type Voter struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex
	keys []*key

	counts sync.Map // outcome → *atomic.Uint64

	// Test hooks: a false answer simulates a crash at that point (the
	// voter stops handling this head and every later one).
	afterPersist func(addr chain.Address, lv store.LastVote) bool
	afterSign    func(v chain.Vote) bool
	crashed      bool
}

// New loads every key's last vote from the store. A key whose record
// cannot be read is disabled (logged), not fatal: the node runs, that key
// does not vote.
func New(cfg Config) (*Voter, error) {
	if cfg.Chain == nil || cfg.Store == nil {
		return nil, errors.New("voter: chain and store are required")
	}
	if cfg.ChainID == "" {
		return nil, errors.New("voter: empty chain id")
	}
	if cfg.EpochBlocks == 0 {
		cfg.EpochBlocks = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	v := &Voter{cfg: cfg, log: cfg.Logger}
	seen := map[chain.Address]bool{}
	for _, priv := range cfg.Keys {
		if len(priv) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("voter: private key of %d bytes", len(priv))
		}
		k := &key{priv: priv, addr: chain.AddressOf(priv.Public().(ed25519.PublicKey))}
		if seen[k.addr] {
			continue
		}
		seen[k.addr] = true
		lv, ok, err := cfg.Store.LastVote(k.addr)
		if err != nil {
			k.disabled = true
			v.log.Error("voter: last vote unreadable, key will not vote", "voter", k.addr, "err", err)
		}
		k.last, k.has = lv, ok
		v.keys = append(v.keys, k)
	}
	return v, nil
}

// Target returns the newest checkpoint at or below height for epoch.
func Target(height, epoch uint64) uint64 {
	if epoch <= 1 {
		return height
	}
	return height - height%epoch
}

// OnHead votes on the chain's current head with every key that may, and
// returns the votes signed (also given to Publish). Call it after every
// change of head (a block applied, a reorg) and whenever justification
// changes; calling it twice on one head signs nothing the second time.
func (v *Voter) OnHead() []chain.Vote {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.crashed {
		return nil
	}
	head, justified := v.cfg.Chain.Tip()
	target := chain.Checkpoint{Height: Target(head.Height, v.cfg.EpochBlocks)}
	if target.Height == head.Height {
		target.Hash = head.Hash
	} else if h, ok := v.cfg.Chain.HashAt(head.Hash, target.Height); ok {
		target.Hash = h
	} else {
		for range v.keys {
			v.count(OutcomeUnknownTarget)
		}
		return nil
	}
	link := store.LastVote{Source: justified, Target: target}
	var ready []*key
	for _, k := range v.keys {
		if outcome := v.decide(k, link); outcome != "" {
			v.count(outcome)
			continue
		}
		ready = append(ready, k)
	}
	if len(ready) == 0 {
		return nil
	}
	// The records first, durable, for all keys at once: once they are,
	// no later vote of these keys can pair badly with the ones about to
	// be signed.
	addrs := make([]chain.Address, len(ready))
	links := make([]store.LastVote, len(ready))
	for i, k := range ready {
		addrs[i], links[i] = k.addr, link
	}
	errs, err := v.cfg.Store.AdvanceLastVotes(addrs, links)
	if err != nil {
		v.log.Warn("voter: last votes not persisted, not voting", "err", err)
		for range ready {
			v.count(OutcomeStoreFailed)
		}
		return nil
	}
	var out []chain.Vote
	for i, k := range ready {
		if errs[i] != nil {
			v.count(v.refused(k, errs[i]))
			continue
		}
		k.last, k.has = link, true
		if v.afterPersist != nil && !v.afterPersist(k.addr, link) {
			v.crashed = true
			return nil
		}
		vote := chain.Vote{Source: link.Source, Target: link.Target}
		vote.Sign(v.cfg.ChainID, k.priv)
		v.count(OutcomeSigned)
		if v.afterSign != nil && !v.afterSign(vote) {
			v.crashed = true
			return nil
		}
		out = append(out, vote)
	}
	if len(out) > 0 && v.cfg.Publish != nil {
		v.cfg.Publish(out)
	}
	return out
}

// decide says why k does not vote for link, or "" when it may (subject
// to the store's own check).
func (v *Voter) decide(k *key, link store.LastVote) string {
	switch {
	case k.disabled:
		return OutcomeDisabled
	case link.Target.Height <= link.Source.Height:
		return OutcomeNoLink
	case k.has && link.Target.Height <= k.last.Target.Height:
		return OutcomeNotHigher
	case k.has && link.Source.Height < k.last.Source.Height:
		return OutcomeSourceLower
	case v.cfg.Chain.StakeOf(k.addr) == 0:
		return OutcomeNoStake
	}
	return ""
}

// refused handles the store's refusal of k's link: a record newer than
// the voter knew (another writer of the file, or a record the voter could
// not read at start) is taken; an unreadable one disables the key.
func (v *Voter) refused(k *key, err error) string {
	if errors.Is(err, store.ErrVoteRegress) {
		if lv, ok, rerr := v.cfg.Store.LastVote(k.addr); rerr == nil && ok {
			k.last, k.has = lv, true
		}
		return OutcomeNotHigher
	}
	k.disabled = true
	v.log.Error("voter: last vote unreadable, key will not vote", "voter", k.addr, "err", err)
	return OutcomeDisabled
}

func (v *Voter) count(outcome string) {
	c, _ := v.counts.LoadOrStore(outcome, new(atomic.Uint64))
	c.(*atomic.Uint64).Add(1)
	if v.cfg.OnOutcome != nil {
		v.cfg.OnOutcome(outcome)
	}
}

// Counts returns how many times each outcome happened.
func (v *Voter) Counts() map[string]uint64 {
	out := map[string]uint64{}
	v.counts.Range(func(k, c any) bool {
		out[k.(string)] = c.(*atomic.Uint64).Load()
		return true
	})
	return out
}
