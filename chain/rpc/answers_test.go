package rpc

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
)

func sampleResults() []SubmitResult {
	id1, id2 := chain.Hash{1, 2, 3}, chain.Hash{31: 9}
	return []SubmitResult{
		{ID: &id1, Status: TxPending},
		{ID: &id2, Error: &Error{Code: "nonce_gap", Message: "nonce 9 is above the next, 3"}},
		{Error: &Error{Code: "bad_signature", Message: "signature is not 128 lowercase hex characters"}},
		{ID: &id1, Error: &Error{}},
	}
}

func TestTxResultsRoundTrip(t *testing.T) {
	for _, rs := range [][]SubmitResult{nil, sampleResults()} {
		got, err := DecodeTxResults(EncodeTxResults(rs), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(rs) || (len(rs) > 0 && !reflect.DeepEqual(got, rs)) {
			t.Fatalf("round trip: %+v, want %+v", got, rs)
		}
	}
	enc := EncodeTxResults(sampleResults())
	for cut := range len(enc) {
		if _, err := DecodeTxResults(enc[:cut], 10); !errors.Is(err, chain.ErrDecode) {
			t.Fatalf("cut at %d: %v, want ErrDecode", cut, err)
		}
	}
}

// A code or message longer than its bound is cut by the encoder, so what
// a node writes always decodes.
func TestTxResultsCutsLongText(t *testing.T) {
	long := []SubmitResult{{Error: &Error{Code: strings.Repeat("c", 100), Message: strings.Repeat("m", 2000)}}}
	got, err := DecodeTxResults(EncodeTxResults(long), 1)
	if err != nil {
		t.Fatal(err)
	}
	if e := got[0].Error; len(e.Code) != maxResultCode || len(e.Message) != maxResultMessage {
		t.Fatalf("code of %d bytes, message of %d", len(e.Code), len(e.Message))
	}
}

func TestDecodeTxResultsRefuses(t *testing.T) {
	id := make([]byte, 32)
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"empty", "empty answer", nil},
		{"version", "answer version 2", []byte{2, 0}},
		{"count", "bad result count", []byte{1}},
		{"padded count", "bad result count", []byte{1, 0x80, 0}},
		{"over the limit", "3 results, the limit is 2", []byte{1, 3, 2, 0, 0, 2, 0, 0, 2, 0, 0}},
		{"count the body cannot hold", "2 results cannot fit in 3 bytes", []byte{1, 2, 2, 0, 0}},
		{"kind", "result 0: kind 3", []byte{1, 1, 3, 0, 0}},
		{"truncated id", "result 0: truncated id", append([]byte{1, 1, 0}, id[:31]...)},
		{"long code", "result 0: code: 65 bytes, at most 64", append([]byte{1, 1, 2, 65}, make([]byte, 66)...)},
		{"truncated message", "result 0: message: truncated", []byte{1, 1, 2, 0, 5, 'a'}},
		{"trailing", "1 trailing bytes", []byte{1, 1, 2, 0, 0, 7}},
	} {
		_, err := DecodeTxResults(c.data, 2)
		if !errors.Is(err, chain.ErrDecode) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrDecode saying %q", c.name, err, c.want)
		}
	}
}

// FuzzDecodeTxResults: the decoder never panics, refuses only with
// ErrDecode, and what it accepts survives a re-encoding.
func FuzzDecodeTxResults(f *testing.F) {
	f.Add(EncodeTxResults(sampleResults()))
	f.Add(EncodeTxResults(nil))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 1, 2, 0x40, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := DecodeTxResults(data, 1000)
		if err != nil {
			if !errors.Is(err, chain.ErrDecode) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		again, err := DecodeTxResults(EncodeTxResults(rs), 1000)
		if err != nil || len(again) != len(rs) || (len(rs) > 0 && !reflect.DeepEqual(again, rs)) {
			t.Fatalf("re-encoding changed the answer (%v)", err)
		}
	})
}

func samplePage() []BlockTxIDs {
	return []BlockTxIDs{
		{Height: 7, Hash: chain.Hash{7}, PrevHash: chain.Hash{6}, TxIDs: []chain.Hash{{1}, {2}, {31: 3}}},
		{Height: 1 << 40, Hash: chain.Hash{8}, PrevHash: chain.Hash{7}, TxIDs: []chain.Hash{}},
	}
}

func encodePage(blocks []BlockTxIDs) []byte {
	out := []byte{BlockTxIDsPageVersion}
	for _, b := range blocks {
		out, _ = b.AppendBinary(out)
	}
	return out
}

func TestBlockTxIDsPageRoundTrip(t *testing.T) {
	for _, page := range [][]BlockTxIDs{nil, samplePage()} {
		got, err := DecodeBlockTxIDsPage(encodePage(page), 10)
		if err != nil || len(got) != len(page) || (len(page) > 0 && !reflect.DeepEqual(got, page)) {
			t.Fatalf("round trip: %+v (%v), want %+v", got, err, page)
		}
	}
	enc := encodePage(samplePage())
	for cut := range len(enc) {
		if cut == 1 || cut == len(encodePage(samplePage()[:1])) {
			continue // whole blocks
		}
		if _, err := DecodeBlockTxIDsPage(enc[:cut], 10); !errors.Is(err, chain.ErrDecode) {
			t.Fatalf("cut at %d: %v, want ErrDecode", cut, err)
		}
	}
	if _, err := DecodeBlockTxIDsPage(enc, 1); !errors.Is(err, chain.ErrDecode) || !strings.Contains(err.Error(), "more than 1 blocks") {
		t.Errorf("2 blocks with a limit of 1: %v", err)
	}
	h := make([]byte, 64)
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"version", "page version 2", []byte{2}},
		{"padded height", "block 0: bad height", append([]byte{1, 0x80, 0}, make([]byte, 66)...)},
		{"id count the body cannot hold", "block 0: 2 ids cannot fit in 32 bytes", append(append([]byte{1, 5}, h...), append([]byte{2}, make([]byte, 32)...)...)},
	} {
		_, err := DecodeBlockTxIDsPage(c.data, 10)
		if !errors.Is(err, chain.ErrDecode) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrDecode saying %q", c.name, err, c.want)
		}
	}
}

// FuzzDecodeBlockTxIDsPage: the decoder never panics, refuses only with
// ErrDecode, and what it accepts survives a re-encoding.
func FuzzDecodeBlockTxIDsPage(f *testing.F) {
	f.Add(encodePage(samplePage()))
	f.Add([]byte{1})
	f.Add(append([]byte{1, 1}, make([]byte, 64)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		page, err := DecodeBlockTxIDsPage(data, 1000)
		if err != nil {
			if !errors.Is(err, chain.ErrDecode) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		again, err := DecodeBlockTxIDsPage(encodePage(page), 1000)
		if err != nil || len(again) != len(page) || (len(page) > 0 && !reflect.DeepEqual(again, page)) {
			t.Fatalf("re-encoding changed the page (%v)", err)
		}
	})
}
