package chain

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// TestRevertRefusesCorruptUndoFinality: an undo record whose finality
// record does not decode (a damaged store) is refused with
// ErrCorruptUndo and leaves the state exactly as it was (accounts and
// record); the intact record then reverts the block.
func TestRevertRefusesCorruptUndoFinality(t *testing.T) {
	c := newTestChain(t, testGenesis(t, threeStakers))
	enc := func() []byte { b, _ := c.state.Finality().MarshalBinary(); return b }
	before := enc()
	beforeAccounts := c.state.Accounts()
	u := c.accept(withVotes(c))
	if u.Finality == nil {
		t.Fatal("the block changed no finality record: the test needs one that does")
	}
	after, afterAccounts := enc(), c.state.Accounts()
	for name, bad := range map[string][]byte{
		"truncated": u.Finality[:len(u.Finality)-1],
		"version":   append([]byte{9}, u.Finality[1:]...),
		"empty":     {},
		"trailing":  append(slices.Clone(u.Finality), 0),
	} {
		t.Run(name, func(t *testing.T) {
			corrupt := *u
			corrupt.Finality = bad
			err := c.state.Revert(&corrupt)
			if !errors.Is(err, ErrCorruptUndo) {
				t.Fatalf("Revert: %v, want ErrCorruptUndo", err)
			}
			if !bytes.Equal(enc(), after) || !slices.Equal(c.state.Accounts(), afterAccounts) {
				t.Fatal("a refused revert changed the state")
			}
		})
	}
	if err := c.state.Revert(u); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc(), before) || !slices.Equal(c.state.Accounts(), beforeAccounts) {
		t.Fatal("the intact undo record did not restore the state")
	}
}
