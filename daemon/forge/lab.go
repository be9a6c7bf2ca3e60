package forge

import (
	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/byzantine"
	"github.com/poslab/posd/daemon/chainmgr"
)

// Lab is what the forger asks of the attack lab: whether to forge, which
// evidence to carry, how to build and publish. Its zero value is an honest
// forger without evidence.
type Lab struct {
	Behaviour byzantine.Behaviour     // nil: honest
	Evidence  func() []chain.Evidence // pending evidence to carry; nil: none
}

// Behaviour is the byzantine behaviour the forger runs (nil: honest).
func (f *Forger) Behaviour() byzantine.Behaviour { return f.lab.Behaviour }

// SetBehaviour gives the forger a byzantine behaviour; call it before Run.
func (f *Forger) SetBehaviour(b byzantine.Behaviour) { f.lab.Behaviour = b }

func (l *Lab) mayForge(height uint64) bool {
	return l.Behaviour == nil || l.Behaviour.Forge(height)
}

// evidenceDue reports whether there is evidence to carry, which makes a
// block due even with no transaction waiting.
func (l *Lab) evidenceDue() bool {
	return l.Evidence != nil && len(l.Evidence()) > 0
}

// prepare attaches pending evidence to an unsigned block, lets the
// behaviour change it, and signs it with sign.
func (l *Lab) prepare(b *chain.Block, parent *chain.Block, snap *chainmgr.Snapshot, sign func(*chain.Header)) *chain.Block {
	if l.Evidence != nil {
		if ev := l.Evidence(); len(ev) > 0 {
			b.SetEvidence(ev)
		}
	}
	if l.Behaviour != nil {
		b = l.Behaviour.Build(b, parent, snap.ReadState())
	}
	sign(&b.Header)
	return b
}

// publish sends a forged block, the behaviour's way if there is one.
func (l *Lab) publish(publish func(*chain.Block), b, parent *chain.Block) {
	switch {
	case l.Behaviour != nil:
		l.Behaviour.Publish(b, parent)
	case publish != nil:
		publish(b)
	}
}
