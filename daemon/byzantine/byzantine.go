// Package byzantine holds the misbehaviours a lab node can be told to
// show (`posd start --byzantine BEHAVIOUR`, `posd devnet --byzantine
// 2=equivocate`), so that the attacks of docs/ATTACKS.md run against a real
// network and the defences can be seen to hold, or fail when switched off.
//
// The node's forger calls a Behaviour at three points: whether to forge at
// all, how to build the block before it is signed, and how to publish it
// once imported. An honest node has no Behaviour. A node refuses every
// behaviour unless its genesis says "lab": true (Check), so nobody runs one
// on a real network by mistake.
package byzantine

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poslab/posd/chain"
)

// Env is what a behaviour may use of its node.
type Env struct {
	Genesis *chain.Genesis
	// Sign signs a header with the node's key (and proves its seed).
	Sign func(h *chain.Header)
	// SignVote signs a vote with the node's key, outside the honest
	// voter's protection (the voting behaviours, votes.go).
	SignVote func(v *chain.Vote)
	// Publish gossips a block to the network (nil: no network).
	Publish func(b *chain.Block)
	Log     *slog.Logger
	Now     func() time.Time
}

// Behaviour is one misbehaviour, called by the node's forger.
type Behaviour interface {
	// Name is the behaviour's name, as given on the command line.
	Name() string
	// Forge says whether to forge at this height at all.
	Forge(height uint64) bool
	// Build may change an unsigned block before the forger signs it
	// (its timestamp, its transaction order); state is the state after
	// the block's parent, for elections. It returns the block to sign.
	Build(b *chain.Block, parent *chain.Block, state *chain.State) *chain.Block
	// Publish sends a block this node forged and imported.
	Publish(b *chain.Block, parent *chain.Block)
}

// Names lists the behaviours New knows.
func Names() []string {
	return []string{"double-vote", "equivocate", "grind", "no-vote", "offline", "private", "surround-vote", "withhold"}
}

// ErrNotLab refuses a behaviour on a network made for real use.
var ErrNotLab = errors.New(`byzantine behaviours run only on a lab network (genesis "lab": true; posd devnet --lab, posd start --genesis --lab)`)

// Check reports whether name may run on g: a known behaviour on a lab
// network, and grind only where there is something to grind (still allowed
// under vrf, to show that it gains nothing).
func Check(name string, g *chain.Genesis) error {
	if !slices.Contains(Names(), name) {
		return fmt.Errorf("unknown byzantine behaviour %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	if !g.Lab {
		return ErrNotLab
	}
	return nil
}

// New returns the named behaviour for env, after Check.
func New(name string, env Env) (Behaviour, error) {
	if err := Check(name, env.Genesis); err != nil {
		return nil, err
	}
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Publish == nil {
		env.Publish = func(*chain.Block) {}
	}
	if env.SignVote == nil {
		env.SignVote = func(*chain.Vote) {}
	}
	env.Log.Warn("BYZANTINE: this node misbehaves on purpose (lab network)", "behaviour", name)
	switch name {
	case "equivocate":
		return &equivocate{base: base{env}}, nil
	case "grind":
		return &grind{base: base{env}, variants: DefaultGrindVariants}, nil
	case "offline":
		return &offline{env: env}, nil
	case "private":
		return &private{base: base{env}}, nil
	case "double-vote":
		return &doubleVote{base: base{env}}, nil
	case "surround-vote":
		return &surroundVote{base: base{env}, replaced: map[uint64]chain.Vote{}}, nil
	case "no-vote":
		return &noVote{base{env}}, nil
	default:
		return &withhold{base{env}}, nil
	}
}

// base is the honest part a behaviour keeps where it behaves.
type base struct{ env Env }

func (base) Forge(uint64) bool { return true }
func (base) Build(b *chain.Block, _ *chain.Block, _ *chain.State) *chain.Block {
	return b
}
func (x base) Publish(b *chain.Block, _ *chain.Block) { x.env.Publish(b) }

// offline stakes but never forges: the chain falls back to the next rank,
// one slot later, at every height it wins.
type offline struct {
	env  Env
	last atomic.Uint64 // the last height logged, so each is logged once
}

func (*offline) Name() string { return "offline" }
func (o *offline) Forge(height uint64) bool {
	if o.last.Swap(height) != height {
		o.env.Log.Warn("BYZANTINE offline: elected, not forging", "height", height)
	}
	return false
}
func (*offline) Build(b *chain.Block, _ *chain.Block, _ *chain.State) *chain.Block { return b }
func (*offline) Publish(*chain.Block, *chain.Block)                                {}

// withhold forges but publishes one slot late: by then the next rank has
// forged, and the withheld block, of a better rank, wins the fork choice
// when it arrives. The chain loses a slot per block it wins.
type withhold struct{ base }

func (*withhold) Name() string { return "withhold" }
func (w *withhold) Publish(b *chain.Block, _ *chain.Block) {
	delay := time.Duration(w.env.Genesis.SlotMs) * time.Millisecond
	w.env.Log.Warn("BYZANTINE withhold: publishing late", "height", b.Height, "delay", delay.String())
	time.AfterFunc(delay, func() { w.env.Publish(b) })
}

// equivocate signs a second block for every slot it forges (another
// timestamp, so another hash) and publishes both. Gossip cannot aim a
// message at some peers only, so every peer gets both and each keeps the
// one the fork choice prefers: exactly what an equivocator causes, and
// what evidence punishes.
type equivocate struct {
	base
	mu sync.Mutex
	// Twins counts the second blocks made.
	twins int
}

func (*equivocate) Name() string { return "equivocate" }
func (e *equivocate) Publish(b *chain.Block, parent *chain.Block) {
	twin := chain.NewBlock(e.env.Genesis, &parent.Header, b.Rank, b.Timestamp+1, b.Transactions)
	e.env.Sign(&twin.Header)
	e.mu.Lock()
	e.twins++
	e.mu.Unlock()
	e.env.Log.Warn("BYZANTINE equivocate: two blocks for one slot", "height", b.Height,
		"a", b.Hash().String(), "b", twin.Hash().String())
	e.env.Publish(b)
	e.env.Publish(twin)
}

// Twins is how many second blocks an equivocate behaviour made.
func Twins(b Behaviour) int {
	e, ok := b.(*equivocate)
	if !ok {
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.twins
}
