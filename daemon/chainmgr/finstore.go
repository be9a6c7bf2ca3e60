package chainmgr

import (
	"fmt"
	"sync"

	"github.com/poslab/posd/chain"
)

// finalityStore makes the finality record survive a store that does not
// keep it (a store of the format before v3: it keeps the accounts, and
// undo records without the record before each block). The finality
// record is part of the state (chain.State.Finality): without it every
// block carrying votes is refused, and a reorg would keep the record of
// the branch it left. So:
//   - LoadState rebuilds a missing record by replaying the main chain
//     from genesis (the record is a function of the chain's blocks);
//   - Switch remembers the record before each block it commits (by block
//     hash, for the last maxFinUndos blocks, the reorg window), and Undo
//     puts it back into an undo record that lacks it.
//
// A store that keeps the record answers with it, and this wrapper then
// changes nothing: it only fills what is missing.
type finalityStore struct {
	Store
	g *chain.Genesis

	mu    sync.Mutex
	undo  map[chain.Hash][]byte // block hash → encoded record before it
	order []chain.Hash          // insertion order, oldest first
}

// maxFinUndos bounds the remembered records: more than a reorg reaches.
const maxFinUndos = 2*MaxReorgDepth + 16

func newFinalityStore(st Store, g *chain.Genesis) *finalityStore {
	return &finalityStore{Store: st, g: g, undo: map[chain.Hash][]byte{}}
}

// hasRecord reports whether st holds a finality record (a real one always
// keeps at least the genesis checkpoint).
func hasRecord(st *chain.State) bool { return st.Finality().Latest() != (chain.Checkpoint{}) }

// LoadState is the store's state, with the finality record rebuilt from
// the main chain when the store holds none.
func (s *finalityStore) LoadState() (*chain.State, error) {
	st, err := s.Store.LoadState()
	if err != nil || hasRecord(st) {
		return st, err
	}
	head, err := s.Store.Head()
	if err != nil {
		return nil, err
	}
	r := s.g.State()
	for h := uint64(1); h <= head.Height; h++ {
		b, err := s.Store.BlockByHeight(h)
		if err != nil {
			return nil, fmt.Errorf("chainmgr: rebuild the finality record: block %d: %w", h, err)
		}
		if _, err := r.Apply(b, s.g); err != nil {
			return nil, fmt.Errorf("chainmgr: rebuild the finality record: block %d: %w", h, err)
		}
	}
	st.SetFinality(r.Finality())
	return st, nil
}

// Switch commits as the store does, remembering each new block's record
// before it.
func (s *finalityStore) Switch(revert int, blocks []*chain.Block, ids [][]chain.Hash, undos []*chain.Undo, st *chain.State) error {
	if err := s.Store.Switch(revert, blocks, ids, undos, st); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range blocks {
		if i >= len(undos) || undos[i] == nil || undos[i].Finality == nil {
			continue
		}
		h := b.Hash()
		if _, ok := s.undo[h]; !ok {
			s.order = append(s.order, h)
		}
		s.undo[h] = undos[i].Finality
	}
	for len(s.order) > maxFinUndos {
		delete(s.undo, s.order[0])
		s.order = s.order[1:]
	}
	return nil
}

// Undo is the store's undo record of the main-chain block at h, with the
// finality record before it put back if the store dropped it.
func (s *finalityStore) Undo(h uint64) (*chain.Undo, error) {
	u, err := s.Store.Undo(h)
	if err != nil || u.Finality != nil {
		return u, err
	}
	hash, err := s.Store.HashAt(h)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	rec, ok := s.undo[hash]
	s.mu.Unlock()
	if ok {
		c := *u
		c.Finality = rec
		return &c, nil
	}
	// Not remembered (a block committed before a restart): rebuild the
	// record before it from genesis.
	r := s.g.State()
	for i := uint64(1); i < h; i++ {
		b, err := s.Store.BlockByHeight(i)
		if err != nil {
			return nil, err
		}
		if _, err := r.Apply(b, s.g); err != nil {
			return nil, fmt.Errorf("chainmgr: rebuild the finality record: block %d: %w", i, err)
		}
	}
	enc, err := r.Finality().MarshalBinary()
	if err != nil {
		return nil, err
	}
	c := *u
	c.Finality = enc
	return &c, nil
}
