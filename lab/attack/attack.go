// Package attack simulates the classic attacks on posd's proof of stake at
// scale, with the defences of the v2 rules (docs/CONSENSUS.md) on or off, and
// measures what the attacker gets.
//
//   - grind: the forger of a block chooses among many variants of it (its
//     timestamp, its transaction order) the one whose seed elects the
//     forger again. Defence: a VRF seed (seed_source vrf), which a forger
//     cannot choose.
//   - withhold: a forger that is rank 0 waits for the rank-1 block, then
//     publishes its own (which wins the fork choice, being of lower rank)
//     or lets the rank-1 block stand, whichever seed elects it next. This
//     is the one bit a VRF seed leaves.
//   - private: the attacker pays a merchant, then builds a private chain
//     from the block before the payment and publishes it when the fork
//     choice prefers it, reversing the payment. Defence: the heartbeat,
//     which keeps an honest chain growing one block per slot (or per
//     HeartbeatInterval) while a payment is less than max_reorg deep; the
//     attacker may backdate its blocks into an idle gap before the payment
//     and fork from any idle beat (IdleBeat) below it. Defence: finality
//     (Finality, the v3 rules): stake-weighted votes make the payment's
//     block final two blocks later when more than 2/3 of the lots vote
//     for the honest chain, and no honest node leaves a final block; the
//     attacker votes only for its own private chain. Reversals are
//     reported apart for payments final when the attacker published and
//     for payments included but not final (finality.go).
//
// The model follows the protocol rules, not a network: one attacker key
// with a share of the stake, honest stake split equally over Honest keys,
// the chain's real election rules (chain/election) run on every height,
// rank k forging k slots after its parent, max_rank candidates per
// election, the fork choice (higher chain; at equal height the lower rank
// of the first differing block) and max_reorg. Time is counted in slots;
// messages arrive at once. Seeds are modelled, not computed with real keys:
// with vrf, the seed of a block is a pseudo-random function of (forger,
// parent seed, height), which its forger can compute but not choose; with
// block_hash it is a pseudo-random function of the block's contents too,
// so a forger that tries Variants contents picks among that many seeds.
// Honest forgers never grind or withhold.
package attack

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/poslab/posd/chain/election"
	"github.com/poslab/posd/lab/stats"
)

// Kind is an attack.
type Kind string

// The attacks.
const (
	Grind    Kind = "grind"
	Withhold Kind = "withhold"
	Private  Kind = "private"
)

// Kinds lists the attacks, in the order the docs present them.
var Kinds = []Kind{Grind, Private, Withhold}

// SeedSource is where a block's seed comes from (genesis seed_source).
type SeedSource string

// The seed sources of the v2 rules (docs/CONSENSUS.md).
const (
	SeedVRF       SeedSource = "vrf"        // ECVRF of the parent seed: cannot be chosen
	SeedBlockHash SeedSource = "block_hash" // the v1 rule: the forger chooses it through its block
)

// Defaults of Config.
const (
	DefaultHonest     = 9
	DefaultStake      = 100 // total stake, in lots
	DefaultVariants   = 1000
	DefaultMaxRank    = 8
	DefaultMaxReorg   = 64
	DefaultDepth      = 12
	DefaultRounds     = 10000 // grind and withhold: heights
	DefaultPrivRounds = 5000  // private: payments
	DefaultSeed       = "posd"
	// progressEvery is how many rounds pass between two Progress calls.
	progressEvery = 100
)

// The stakers' keys in the model. The attacker's name sorts among the
// honest ones' so the lottery meets it in no special place.
const attackerKey = "attacker"

func honestKey(i int) string { return fmt.Sprintf("honest-%02d", i+1) }

// Config is one simulated attack.
type Config struct {
	Attack   Kind
	Election election.Algorithm
	// AttackerShare is the attacker's share of the stake, in (0, 1). The
	// stake is split in whole lots: see Result.AttackerStakeShare.
	AttackerShare float64
	// Honest is how many honest stakers share the rest equally (default 9).
	Honest int
	// Stake is the total stake in lots (default 100): the lottery costs
	// one hash per lot and per election.
	Stake      uint64
	SeedSource SeedSource
	Heartbeat  bool
	// Finality is the v3 finality defence (private only; the v3 rules
	// in docs/CONSENSUS.md): honest nodes never adopt a branch without their latest
	// final block, then prefer the higher justified checkpoint, then v2's
	// rule. Off (the zero value): v2's fork choice alone. Either way the
	// votes are counted, to tell which payments were final.
	Finality bool
	// Rounds: heights of one chain for grind and withhold; payments
	// attacked for private.
	Rounds int
	// Variants is how many versions of its block a grinding forger tries
	// (default 1000). It matters only with block_hash.
	Variants int
	MaxRank  int // candidates per election (default 8)
	MaxReorg int // deepest reorg a node makes (default 64)
	// Depth is the deepest payment the private attack reports (default 12).
	Depth int
	// IdleGap is how many slots the chain rested between the payment's
	// parent block and the payment (private only). A private attacker may
	// date its blocks into that gap. Default 0: the parent is fresh.
	IdleGap int
	// MinGap is how many slots every block costs on top of its rank: a
	// block of rank k may be forged (k+MinGap) slots after its parent.
	// The v2 rules say 0 (docs/CONSENSUS.md, Block header, Timing: a
	// rank-0 block may reuse its parent's timestamp).
	// 1 is a proposed rule under which a private chain cannot outpace the
	// heartbeat. Private only; a whole number of ticks (TicksPerSlot).
	MinGap float64
	// HeartbeatInterval is how old, in slots, the head must be before the
	// honest rank-0 candidate forges an empty block (the heartbeat's
	// cadence). The v2 rules first said 1 (slot_ms), the default here;
	// posd now beats at slot_ms/4 (docs/CONSENSUS.md, The heartbeat).
	// Fallback ranks keep their wait of rank × slot. Private only.
	HeartbeatInterval float64
	// IdleBeat, if above 0, is how often, in slots, a resting chain still
	// forges an empty block (the heartbeat never fully rests). With an
	// IdleGap longer than IdleBeat, the payment's parent is the last such
	// beat and the attacker may fork from any beat below it. 0: the chain
	// rests (the v2 rules: docs/CONSENSUS.md, The heartbeat). Private only.
	IdleBeat float64
	// Seed makes a run reproducible; another seed is another run.
	Seed string
	// Workers run private rounds in parallel (default 1); the result does
	// not depend on it.
	Workers int
	// Progress, if set, is called with the rounds done and Rounds, now and
	// then and once at the end. Calls never overlap, but may come from
	// different goroutines.
	Progress func(done, total int)
}

// withDefaults fills the zero fields of cfg.
func (cfg Config) withDefaults() Config {
	if cfg.Honest == 0 {
		cfg.Honest = DefaultHonest
	}
	if cfg.Stake == 0 {
		cfg.Stake = DefaultStake
	}
	if cfg.Variants == 0 {
		cfg.Variants = DefaultVariants
	}
	if cfg.MaxRank == 0 {
		cfg.MaxRank = DefaultMaxRank
	}
	if cfg.MaxReorg == 0 {
		cfg.MaxReorg = DefaultMaxReorg
	}
	if cfg.Depth == 0 {
		cfg.Depth = DefaultDepth
	}
	if cfg.Rounds == 0 {
		cfg.Rounds = DefaultRounds
		if cfg.Attack == Private {
			cfg.Rounds = DefaultPrivRounds
		}
	}
	if cfg.Seed == "" {
		cfg.Seed = DefaultSeed
	}
	if cfg.SeedSource == "" {
		cfg.SeedSource = SeedVRF
	}
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = 1
	}
	return cfg
}

// Validate checks cfg (after defaults) and says what is wrong in terms of
// the fields.
func (cfg Config) validate() error {
	switch {
	case !slices.Contains(Kinds, cfg.Attack):
		return fmt.Errorf("unknown attack %q: use %s", cfg.Attack, kindList())
	case cfg.Election == nil:
		return errors.New("no election rule")
	case !(cfg.AttackerShare > 0 && cfg.AttackerShare < 1):
		return fmt.Errorf("the attacker's share must be above 0 and below 1, got %v", cfg.AttackerShare)
	case cfg.Honest < 1 || cfg.Honest > 1000:
		return fmt.Errorf("honest stakers must be 1 to 1000, got %d", cfg.Honest)
	case cfg.Stake < uint64(cfg.Honest)+1 || cfg.Stake > 1_000_000:
		return fmt.Errorf("the total stake must be %d (a lot for each staker) to 1000000 lots, got %d", cfg.Honest+1, cfg.Stake)
	case cfg.SeedSource != SeedVRF && cfg.SeedSource != SeedBlockHash:
		return fmt.Errorf("unknown seed source %q: use vrf or block_hash", cfg.SeedSource)
	case cfg.Rounds < 1 || cfg.Rounds > 10_000_000:
		return fmt.Errorf("rounds must be 1 to 10000000, got %d", cfg.Rounds)
	case cfg.Variants < 1 || cfg.Variants > 1_000_000:
		return fmt.Errorf("variants must be 1 to 1000000, got %d", cfg.Variants)
	case cfg.MaxRank < 2 || cfg.MaxRank > 1000:
		// With one candidate an attacker at rank 0 would halt the honest
		// chain: the model needs an honest candidate at every height.
		return fmt.Errorf("max rank must be 2 to 1000, got %d", cfg.MaxRank)
	case cfg.MaxReorg < 1 || cfg.MaxReorg > 10_000:
		return fmt.Errorf("max reorg must be 1 to 10000, got %d", cfg.MaxReorg)
	case cfg.Depth < 1 || cfg.Depth > cfg.MaxReorg:
		return fmt.Errorf("depth must be 1 to max reorg (%d), got %d", cfg.MaxReorg, cfg.Depth)
	case cfg.IdleGap < 0 || cfg.IdleGap > 1_000_000:
		return fmt.Errorf("idle gap must be 0 to 1000000 slots, got %d", cfg.IdleGap)
	case !(cfg.MinGap >= 0 && cfg.MinGap <= 8) || !wholeTicks(cfg.MinGap):
		return fmt.Errorf("min gap must be 0 to 8 slots in steps of 0.001, got %v", cfg.MinGap)
	case !(cfg.HeartbeatInterval >= 0.001 && cfg.HeartbeatInterval <= 1) || !wholeTicks(cfg.HeartbeatInterval):
		return fmt.Errorf("heartbeat interval must be 0.001 to 1 slot in steps of 0.001, got %v", cfg.HeartbeatInterval)
	case !(cfg.IdleBeat == 0 || cfg.IdleBeat >= 0.001 && cfg.IdleBeat <= 1_000_000) || !wholeTicks(cfg.IdleBeat):
		return fmt.Errorf("idle beat must be 0 (rest) or 0.001 to 1000000 slots in steps of 0.001, got %v", cfg.IdleBeat)
	case cfg.IdleBeat > 0 && !cfg.Heartbeat:
		return errors.New("an idle beat needs the heartbeat on")
	}
	return nil
}

// wholeTicks reports whether slots is a whole number of ticks.
func wholeTicks(slots float64) bool {
	return math.Abs(slots*TicksPerSlot-math.Round(slots*TicksPerSlot)) < 1e-6
}

func kindList() string {
	var s []string
	for _, k := range Kinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// Reversal is the private attack's outcome for payments Depth blocks deep.
type Reversal struct {
	// K: the merchant accepts the payment when its block and K-1 blocks on
	// top of it are on the honest chain (K confirmations).
	K        int
	Reversed int // rounds in which the attacker's chain replaced it after that
	Rounds   int
	// Probability is Reversed/Rounds, with its 95% Wilson interval.
	Probability, Lo, Hi float64
	// Final counts the payments that were final when the merchant accepted
	// them. FinalReversed counts the reversals in which the payment was
	// final when the attacker published, NotFinalReversed those in which
	// it was included but not final (Reversed is their sum); the
	// probabilities are of all Rounds. With Config.Finality off, "final"
	// is what the votes would have made final, which v2's fork choice
	// ignores.
	Final, FinalReversed, NotFinalReversed int
	FinalProbability, NotFinalProbability  float64
}

// Result is what a simulated attack measured.
type Result struct {
	Config Config // with defaults filled in
	// AttackerStake and TotalStake are the stakes in lots; the attacker's
	// share of the stake is their ratio.
	AttackerStake, TotalStake uint64
	AttackerStakeShare        float64
	// Blocks and AttackerBlocks count blocks (see BlockShare).
	Blocks, AttackerBlocks int
	// AttackerBlockShare is AttackerBlocks/Blocks: for grind and withhold,
	// the attacker's share of the chain's blocks; for private, its share of
	// the blocks forged during the race (its private blocks against the
	// honest chain's, over the max_reorg slots in which the race can be
	// won), that is how fast it builds against the honest chain.
	AttackerBlockShare float64
	// Lo and Hi are the 95% Wilson interval of AttackerBlockShare (as if
	// blocks were independent trials: they are not under grinding, where
	// the interval is too narrow).
	Lo, Hi float64
	// SD is the standard deviation of the attacker's share of blocks in a
	// fair chain of this length: sqrt(p(1-p)/Blocks), p its stake share.
	SD float64
	// Sigmas is (AttackerBlockShare - AttackerStakeShare)/SD.
	Sigmas float64

	// Grind and withhold: the longest run of consecutive attacker blocks.
	LongestRun int
	// Withhold: heights at which the attacker was rank 0 and waited for
	// the rank-1 block (each costs the chain one slot), and of those the
	// ones at which it let the rank-1 block stand.
	Waited, Withheld int
	// Withhold: after a height at which the attacker was rank 0, how often
	// it was rank 0 again at the next height (a fair seed: its stake share).
	NextRankZero, AfterRankZero int
	// DelaySlots is the slots the attack cost the chain in all: for
	// withhold, one per height at which it waited.
	DelaySlots int

	// Private: the probability of reversal of a payment k deep, k = 1..Depth.
	Reversal []Reversal
	// Private, heartbeat on: the probability that a payment max_reorg deep
	// (the deepest a merchant can wait for) is reversed.
	Deep *Reversal
	// Private, heartbeat on: how many slots the honest chain took per block
	// after P, on average (HeartbeatInterval when the attacker never held
	// rank 0 on it; each height it did costs the rank-1 fallback's slot).
	HonestSlotsPerBlock float64
	// Private: rounds in which the attacker's chain died (no election on its
	// own seed put it within max_rank, so it could not forge the next block).
	DeadChains int
	// Private: the honest stakers' share of the lots, which vote for the
	// honest chain; the confirmations at which a payment is final on it
	// (0: never); whether finality stalls (honest votes not more than 2/3
	// of the lots: nothing honest becomes final).
	HonestVoteShare float64
	FinalDepth      int
	FinalityStalled bool
}

// model is the part of a run shared by every round.
type model struct {
	cfg      Config
	tab      *election.StakeTable
	salt     []byte
	attacker uint64 // attacker's stake in lots
}

func newModel(cfg Config) *model {
	stakes := map[string]uint64{}
	a := uint64(math.Round(cfg.AttackerShare * float64(cfg.Stake)))
	a = max(1, min(a, cfg.Stake-uint64(cfg.Honest)))
	rest := cfg.Stake - a
	for i := range cfg.Honest {
		s := rest / uint64(cfg.Honest)
		if uint64(i) < rest%uint64(cfg.Honest) {
			s++
		}
		stakes[honestKey(i)] = s
	}
	stakes[attackerKey] = a
	return &model{cfg: cfg, tab: election.NewStakeTable(stakes), salt: []byte(cfg.Seed), attacker: a}
}

// seed is a block's seed as the model computes it.
type seed [32]byte

// vrfSeed models seed = VRF(forger's key, parent seed ‖ height): a
// pseudo-random function its forger can evaluate but not steer. The run's
// salt stands for the forgers' secret keys.
func (m *model) vrfSeed(forger string, parent seed, height uint64) seed {
	return m.hash("posd/lab/vrf", forger, parent, height, 0)
}

// blockSeed models seed = hash of the block: it depends on the contents the
// forger chose, variant standing for one choice of timestamp and
// transaction order.
func (m *model) blockSeed(forger string, parent seed, height uint64, variant int) seed {
	return m.hash("posd/lab/block", forger, parent, height, uint64(variant))
}

func (m *model) hash(domain, forger string, parent seed, height, variant uint64) seed {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write([]byte{0})
	h.Write(m.salt)
	h.Write([]byte{0})
	h.Write([]byte(forger))
	h.Write([]byte{0})
	h.Write(parent[:])
	var n [16]byte
	binary.BigEndian.PutUint64(n[:8], height)
	binary.BigEndian.PutUint64(n[8:], variant)
	h.Write(n[:])
	var s seed
	h.Sum(s[:0])
	return s
}

// honestSeed is the seed of an honest forger's block: it neither grinds
// nor withholds.
func (m *model) honestSeed(forger string, parent seed, height uint64) seed {
	if m.cfg.SeedSource == SeedVRF {
		return m.vrfSeed(forger, parent, height)
	}
	return m.blockSeed(forger, parent, height, 0)
}

// rank runs the chain's election on the seed, as a node does on the
// parent's seed (its hex), and returns the ranked candidates (at most
// max_rank).
func (m *model) rank(s seed) []string {
	return m.cfg.Election.Rank(hex.EncodeToString(s[:]), m.tab, m.cfg.MaxRank)
}

// attackerRank is the attacker's rank in the election on s, or -1 when it
// is not among the max_rank candidates (it may not forge).
func (m *model) attackerRank(s seed) int {
	return slices.Index(m.rank(s), attackerKey)
}

// grindSeed is the seed of the attacker's block at height on parent: with
// block_hash, the first of Variants versions whose seed makes the attacker
// rank 0 next (else the one with its best rank); with vrf its only seed.
// It returns the seed and the attacker's rank in the next election (-1:
// beyond max_rank).
func (m *model) grindSeed(parent seed, height uint64) (seed, int) {
	if m.cfg.SeedSource == SeedVRF {
		s := m.vrfSeed(attackerKey, parent, height)
		return s, m.attackerRank(s)
	}
	best, bestRank := seed{}, -1
	for v := range m.cfg.Variants {
		s := m.blockSeed(attackerKey, parent, height, v)
		r := m.attackerRank(s)
		if r == 0 {
			return s, 0
		}
		if v == 0 || (r >= 0 && (bestRank < 0 || r < bestRank)) {
			best, bestRank = s, r
		}
	}
	return best, bestRank
}

// Run simulates cfg. It stops early, with ctx's error, when ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := newModel(cfg)
	res := &Result{Config: cfg, AttackerStake: m.attacker, TotalStake: m.tab.Total()}
	res.AttackerStakeShare = float64(res.AttackerStake) / float64(res.TotalStake)
	var err error
	switch cfg.Attack {
	case Grind, Withhold:
		err = m.chain(ctx, res)
	case Private:
		err = m.private(ctx, res)
	}
	if err != nil {
		return nil, err
	}
	if res.Blocks > 0 {
		p := res.AttackerStakeShare
		res.AttackerBlockShare = float64(res.AttackerBlocks) / float64(res.Blocks)
		res.Lo, res.Hi = stats.Wilson(res.AttackerBlocks, res.Blocks, stats.Z95)
		res.SD = stats.BinomialSD(p, res.Blocks)
		res.Sigmas = (res.AttackerBlockShare - p) / res.SD
	}
	return res, nil
}

// progress serialises Progress calls.
type progress struct {
	mu    sync.Mutex
	done  int
	total int
	f     func(done, total int)
}

func (p *progress) add(n int) {
	if p.f == nil || n == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.f(p.done, p.total)
}

// chain runs grind or withhold on one chain of cfg.Rounds heights. Every
// honest staker is online and forges at its rank as soon as it may.
func (m *model) chain(ctx context.Context, res *Result) error {
	cfg := m.cfg
	prog := &progress{f: cfg.Progress, total: cfg.Rounds}
	parent := sha256.Sum256([]byte("posd/lab/genesis\x00" + cfg.Seed)) // block 0's seed: the genesis hash
	run := 0
	afterRankZero := false
	for i := range cfg.Rounds {
		if i%progressEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if i > 0 {
				prog.add(progressEvery)
			}
		}
		height := uint64(i + 1)
		ranking := m.rank(parent)
		first := ranking[0]
		if afterRankZero {
			res.AfterRankZero++
			if first == attackerKey {
				res.NextRankZero++
			}
		}
		afterRankZero = first == attackerKey
		var next seed
		attackerForged := false
		switch {
		case first != attackerKey:
			next = m.honestSeed(first, parent, height)
		case cfg.Attack == Grind:
			next, _ = m.grindSeed(parent, height)
			attackerForged = true
		default: // withhold: wait for the rank-1 block, keep the better seed
			res.Waited++
			res.DelaySlots++
			own := m.vrfSeed(attackerKey, parent, height)
			if cfg.SeedSource == SeedBlockHash {
				own, _ = m.grindSeed(parent, height)
			}
			next, attackerForged = own, true
			if len(ranking) > 1 && m.attackerRank(own) != 0 {
				other := m.honestSeed(ranking[1], parent, height)
				if m.attackerRank(other) == 0 {
					next, attackerForged = other, false
					res.Withheld++
				}
			}
		}
		res.Blocks++
		if attackerForged {
			res.AttackerBlocks++
			run++
			res.LongestRun = max(res.LongestRun, run)
		} else {
			run = 0
		}
		parent = next
	}
	prog.add(cfg.Rounds - prog.done)
	return nil
}
