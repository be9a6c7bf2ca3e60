package byzantine

import (
	"context"
	"crypto/sha256"
	"sync/atomic"
	"time"

	"github.com/poslab/posd/chain"
)

// The private attack on a devnet (docs/ATTACKS.md, "A private chain
// reversing a payment"). From the head at the moment it starts, the node
// pays a merchant in public and, in private, spends the same nonce on
// itself; it forges its private chain wherever the election on that chain
// elects it, at its rank's time, and stops forging in public. Once the
// payment is PrivateDepth blocks deep in public and its chain is higher,
// it publishes the whole chain: every node reorganises and the payment is
// gone. The heartbeat (an honest chain that keeps growing while a payment
// is less than max_reorg deep) is the defence.

// PrivateDepth is how deep the payment must be before the attacker
// publishes: the merchant's confirmations.
const PrivateDepth = 6

// PrivatePayment is what the attacker pays the merchant.
const PrivatePayment = 100

// Merchant is the address the private attacker pays.
func Merchant() chain.Address {
	sum := sha256.Sum256([]byte("posd lab merchant"))
	return chain.Address(chain.Hash(sum).String()[:chain.AddressLen])
}

// NodeAccess is what the private attack needs of its node besides Env.
type NodeAccess struct {
	// Head returns the head and a copy of the state after it.
	Head    func() (*chain.Block, *chain.State)
	Address chain.Address
	SignTx  func(tx *chain.Transaction)
	// Submit pools a transaction and gossips it.
	Submit func(tx chain.Transaction) error
	// Committed says at which main-chain height a transaction is.
	Committed func(id chain.Hash) (uint64, bool)
	// Import processes a block locally (ProcessBlock).
	Import func(b *chain.Block) error
}

// Runner is a behaviour that works on its own besides the forger's calls;
// the node runs it until it stops.
type Runner interface {
	Run(ctx context.Context, node NodeAccess)
}

type private struct {
	base
	done atomic.Bool
	// Published is the height of the private chain's tip once published.
	published atomic.Uint64
}

func (*private) Name() string { return "private" }

// Forge: not in public while the attack runs.
func (p *private) Forge(uint64) bool { return p.done.Load() }

// Published reports the private chain's tip height once the attack
// published it (0 before).
func Published(b Behaviour) uint64 {
	if p, ok := b.(*private); ok {
		return p.published.Load()
	}
	return 0
}

func (p *private) Run(ctx context.Context, node NodeAccess) {
	defer p.done.Store(true)
	g, log := p.env.Genesis, p.env.Log
	// Start once the chain moves (peers are there to take the payment).
	for {
		if head, _ := node.Head(); head.Height >= 1 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	fork, st := node.Head()
	acc := st.Account(node.Address)
	if acc.Balance < PrivatePayment {
		log.Warn("BYZANTINE private: not enough coins to pay the merchant", "balance", acc.Balance)
		return
	}
	pay := chain.Transaction{Type: chain.TxTransfer, ChainID: g.ChainID, To: Merchant(), Amount: PrivatePayment, Nonce: acc.Nonce + 1}
	node.SignTx(&pay)
	spend := chain.Transaction{Type: chain.TxTransfer, ChainID: g.ChainID, To: node.Address, Amount: PrivatePayment, Nonce: acc.Nonce + 1}
	node.SignTx(&spend)
	if err := node.Submit(pay); err != nil {
		log.Warn("BYZANTINE private: the payment was refused", "err", err.Error())
		return
	}
	log.Warn("BYZANTINE private: paid the merchant in public; forging a private chain with a double spend", "fork_height", fork.Height, "payment", pay.ID().String())
	alg, err := g.Algorithm()
	if err != nil {
		return
	}
	var branch []*chain.Block
	tip := fork
	txs := []chain.Transaction{spend}
	slot := time.Duration(g.SlotMs) * time.Millisecond
	for len(branch) < chain.MaxEvidenceAge {
		cands := chain.ElectWith(alg, g.MaxRank, chain.ElectionSeed(g, &tip.Header), chain.ElectionTable(g, st))
		rank := -1
		for i, c := range cands {
			if c == node.Address {
				rank = i
			}
		}
		if rank < 0 {
			log.Warn("BYZANTINE private: not elected on the private chain: it dies", "height", tip.Height+1)
			return
		}
		at := time.UnixMilli(tip.Timestamp + int64(rank)*g.SlotMs)
		for {
			// Publish as soon as the private chain wins and the payment is deep.
			head, _ := node.Head()
			if h, ok := node.Committed(pay.ID()); ok && head.Height+1 >= h+PrivateDepth && tip.Height > head.Height {
				p.publish(node, branch, h)
				return
			}
			if !p.env.Now().Before(at) {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Until(at), slot/4)):
			}
		}
		b := chain.NewBlock(g, &tip.Header, uint32(rank), max(p.env.Now().UnixMilli(), at.UnixMilli()), txs)
		p.env.Sign(&b.Header)
		if _, err := st.Apply(b, g); err != nil {
			log.Warn("BYZANTINE private: private block does not apply", "err", err.Error())
			return
		}
		branch = append(branch, b)
		tip, txs = b, nil
		log.Warn("BYZANTINE private: forged a private block", "height", b.Height, "rank", rank)
	}
}

func (p *private) publish(node NodeAccess, branch []*chain.Block, paidAt uint64) {
	p.env.Log.Warn("BYZANTINE private: publishing the private chain", "blocks", len(branch),
		"tip", branch[len(branch)-1].Height, "payment_height", paidAt)
	for _, b := range branch {
		_ = node.Import(b) // side blocks first, then the reorg
		p.env.Publish(b)
	}
	p.published.Store(branch[len(branch)-1].Height)
}
