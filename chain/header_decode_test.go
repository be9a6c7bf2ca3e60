package chain

import (
	"errors"
	"testing"
)

// TestDecodeHeader: the header of a block of each codec version decodes
// alone to DecodeBlock's header; what is not a block's beginning is refused
// with ErrDecode.
func TestDecodeHeader(t *testing.T) {
	g := testGenesis(t)
	plain := NewBlock(g, &g.Block().Header, 0, g.Timestamp+5, []Transaction{signedTx(TxTransfer, "alice", testAddr("bob"), 5, 1, 1)})
	plain.Header.Sign(testKey("alice"))
	c := newTestChain(t, testGenesis(t, threeStakers))
	c.accept(withVotes(c))
	voted := withVotes(c, allVote(c, "alice", "bob", "carol")...)
	for name, b := range map[string]*Block{"genesis": g.Block(), "transfer": plain, "votes": voted} {
		data := EncodeBlock(b)
		h, err := DecodeHeader(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if *h != b.Header || h.Hash() != b.Hash() {
			t.Fatalf("%s: another header", name)
		}
		// Only the header is read: the block cut right after its header
		// (before the counts its body starts with) still gives it.
		cut := data[:len(EncodeBlock(&Block{Header: b.Header}))-1]
		if _, err := DecodeBlock(cut); err == nil {
			t.Fatalf("%s: the cut block decodes whole", name)
		}
		if h, err := DecodeHeader(cut); err != nil || *h != b.Header {
			t.Fatalf("%s: the cut block's header: %v", name, err)
		}
	}
	data := EncodeBlock(plain)
	for name, bad := range map[string][]byte{
		"empty":           nil,
		"unknown version": append([]byte{99}, data[1:]...),
		"header cut":      data[:20],
	} {
		if _, err := DecodeHeader(bad); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: %v, want ErrDecode", name, err)
		}
	}
}
