package api

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/internal/testkit"
)

func postBinary(t *testing.T, url, contentType string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url+"/v1/txs", contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// doAccepting sends req with the Accept header accept and reads the answer.
func doAccepting(t *testing.T, req *http.Request, accept string) (*http.Response, []byte) {
	t.Helper()
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

// TestPostTxsBinary: a binary batch is admitted item by item like a JSON
// one; malformed or oversized bodies are 4xx JSON errors and admit nothing.
func TestPostTxsBinary(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(newTestHandler(f))
	defer srv.Close()

	good := testkit.Transfer(testkit.Alice, bob, 7, 0, 3)
	replay := testkit.Transfer(testkit.Alice, bob, 8, 0, 1) // bad_nonce
	status, data := postBinary(t, srv.URL, "application/octet-stream", rpc.EncodeTxBatch([]chain.Transaction{good, replay}))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, data)
	}
	var res []rpc.SubmitResult
	if err := json.Unmarshal(data, &res); err != nil || len(res) != 2 {
		t.Fatalf("answer %s (%v)", data, err)
	}
	if res[0].Error != nil || res[0].Status != rpc.TxPending || *res[0].ID != good.ID() {
		t.Errorf("item 0: %+v", res[0])
	}
	if res[1].Error == nil || res[1].Error.Code != "bad_nonce" || *res[1].ID != replay.ID() {
		t.Errorf("item 1: %+v", res[1])
	}

	valid := rpc.EncodeTxBatch([]chain.Transaction{testkit.Transfer(testkit.Alice, bob, 9, 0, 4)})
	tooMany := rpc.EncodeTxBatch(make([]chain.Transaction, testMaxBatch+1))
	for _, tc := range []struct {
		name   string
		ctype  string
		body   []byte
		status int
		code   string
	}{
		{"truncated", "application/octet-stream", valid[:len(valid)-1], 400, "bad_request"},
		{"trailing bytes", "application/octet-stream", append(bytes.Clone(valid), 0), 400, "bad_request"},
		{"wrong version", "application/octet-stream", append([]byte{9}, valid[1:]...), 400, "bad_request"},
		{"count beyond the body", "application/octet-stream", []byte{1, 2, 5}, 400, "bad_request"},
		{"over the batch limit", "application/octet-stream; charset=binary", tooMany, 413, "payload_too_large"},
		{"empty", "application/octet-stream", nil, 400, "bad_json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.pool)
			status, data := postBinary(t, srv.URL, tc.ctype, tc.body)
			var eb rpc.ErrorBody
			if status != tc.status || json.Unmarshal(data, &eb) != nil || eb.Error == nil || eb.Error.Code != tc.code {
				t.Fatalf("status %d %s, want %d %s", status, data, tc.status, tc.code)
			}
			if len(f.pool) != before {
				t.Error("a refused body admitted something")
			}
		})
	}
}

// TestBlockTxIDs: GET /v1/blocks/txids answers the blocks of GET
// /v1/blocks as ids only; bad queries are 400.
func TestBlockTxIDs(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(newTestHandler(f))
	defer srv.Close()
	get := func(path string) (int, []byte) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, data
	}
	status, data := get("/v1/blocks/txids?from=0&limit=10")
	var got []rpc.BlockTxIDs
	if status != 200 || json.Unmarshal(data, &got) != nil {
		t.Fatalf("status %d: %s", status, data)
	}
	want, _ := f.Blocks(0, 10)
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%d blocks, want %d", len(got), len(want))
	}
	for i, b := range want {
		g := got[i]
		if g.Height != b.Height || g.Hash != b.Hash() || g.PrevHash != b.PrevHash || len(g.TxIDs) != len(b.Transactions) {
			t.Fatalf("block %d: %+v", i, g)
		}
		for j := range b.Transactions {
			if g.TxIDs[j] != b.Transactions[j].ID() {
				t.Errorf("block %d tx %d: id %s", i, j, g.TxIDs[j])
			}
		}
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?from=-1"} {
		if status, data := get("/v1/blocks/txids" + q); status != 400 || !bytes.Contains(data, []byte(`"bad_request"`)) {
			t.Errorf("%s: %d %s", q, status, data)
		}
	}
}

// TestBlockTxIDsPagedByBytes: ids of big blocks are bounded by the page's
// bytes, not only by the count, and X-Next-From carries the client on.
func TestBlockTxIDsPagedByBytes(t *testing.T) {
	f := newFake()
	base, _ := serveLimited(t, limitedHandler(f, Limits{MaxPageBytes: 2 << 10}), 0)
	var heights []uint64
	from := "0"
	for pages := 0; from != ""; pages++ {
		resp, err := http.Get(base + "/v1/blocks/txids?limit=1000&from=" + from)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var list []rpc.BlockTxIDs
		if resp.StatusCode != 200 || json.Unmarshal(body, &list) != nil || len(list) == 0 {
			t.Fatalf("page %d: status %d: %.200s", pages, resp.StatusCode, body)
		}
		if len(list) > 1 && len(body) > 2<<10+1024 {
			t.Fatalf("page %d: %d bytes over a 2 KiB budget with %d blocks", pages, len(body), len(list))
		}
		for _, b := range list {
			heights = append(heights, b.Height)
		}
		from = resp.Header.Get(headerNextFrom)
		if pages > testHeight+2 {
			t.Fatal("paging does not end")
		}
	}
	if len(heights) != testHeight+1 || heights[testHeight] != testHeight {
		t.Fatalf("paged through %d blocks, want %d", len(heights), testHeight+1)
	}
}

// TestMalformedKeyOrSignatureKeepsItsCode: a public key or signature that
// is not the lowercase hex of its size is refused with its rule code
// (422 bad_public_key, bad_signature), alone and inside JSON and binary
// batches, where it is refused alone and the rest is admitted.
func TestMalformedKeyOrSignatureKeepsItsCode(t *testing.T) {
	good := testkit.Transfer(testkit.Alice, bob, 7, 0, 3)
	sigHex, keyHex := good.Signature.String(), good.PublicKey.String()
	cases := []struct {
		name, field, text, code string
	}{
		{"signature not hex", "signature", "zz" + sigHex[2:], "bad_signature"},
		{"signature in upper case", "signature", strings.ToUpper(sigHex), "bad_signature"},
		{"public key not hex", "public_key", "xy" + keyHex[2:], "bad_public_key"},
		{"public key all zeros", "public_key", strings.Repeat("0", 64), "bad_public_key"},
		{"short signature", "signature", sigHex[:100], "bad_signature"},
		{"long public key", "public_key", keyHex + "ab", "bad_public_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			srv := httptest.NewServer(newTestHandler(f))
			defer srv.Close()
			other := testkit.Transfer(testkit.Bob, alice, 1, 0, 1)
			bad := testkit.Transfer(testkit.Alice, bob, 2, 0, 4)
			var m map[string]any
			js, _ := json.Marshal(bad)
			json.Unmarshal(js, &m)
			m[tc.field] = tc.text
			badJSON, _ := json.Marshal(m)
			before := len(f.pool)

			// Alone: 422 with the code.
			resp, err := http.Post(srv.URL+"/v1/txs", "application/json", bytes.NewReader(badJSON))
			if err != nil {
				t.Fatal(err)
			}
			var eb rpc.ErrorBody
			json.NewDecoder(resp.Body).Decode(&eb)
			resp.Body.Close()
			if resp.StatusCode != 422 || eb.Error == nil || eb.Error.Code != tc.code {
				t.Fatalf("alone: %d %+v, want 422 %s", resp.StatusCode, eb.Error, tc.code)
			}
			if len(f.pool) != before {
				t.Fatal("the refused transaction was admitted")
			}

			// In a JSON batch: that item refused, the other admitted.
			otherJSON, _ := json.Marshal(other)
			batch := []byte("[" + string(badJSON) + "," + string(otherJSON) + "]")
			resp, err = http.Post(srv.URL+"/v1/txs", "application/json", bytes.NewReader(batch))
			if err != nil {
				t.Fatal(err)
			}
			var res []rpc.SubmitResult
			json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
			if resp.StatusCode != 200 || len(res) != 2 || res[0].Error == nil || res[0].Error.Code != tc.code || res[0].ID != nil ||
				res[1].Error != nil || res[1].Status != rpc.TxPending || *res[1].ID != other.ID() {
				t.Fatalf("JSON batch: %d %+v", resp.StatusCode, res)
			}

			// In a binary batch, the same.
			enc := chain.EncodeTx(&bad)
			was := bad.Signature.String()
			if tc.field == "public_key" {
				was = bad.PublicKey.String()
			}
			encBad := bytes.Replace(enc, []byte(was), []byte(tc.text), 1)
			if len(tc.text) != len(was) {
				// Another length: the field's length prefix changes too.
				encBad = bytes.Replace(enc, append(binary.AppendUvarint(nil, uint64(len(was))), was...), append(binary.AppendUvarint(nil, uint64(len(tc.text))), tc.text...), 1)
			}
			if bytes.Equal(encBad, enc) {
				t.Fatal("field not found in the encoding")
			}
			other2 := testkit.Transfer(testkit.Bob, alice, 1, 0, 2)
			enc2 := chain.EncodeTx(&other2)
			body := []byte{1, 2} // version, count
			for _, e := range [][]byte{encBad, enc2} {
				body = binary.AppendUvarint(body, uint64(len(e)))
				body = append(body, e...)
			}
			status, data := postBinary(t, srv.URL, "application/octet-stream", body)
			res = nil
			if status != 200 || json.Unmarshal(data, &res) != nil || len(res) != 2 || res[0].Error == nil || res[0].Error.Code != tc.code ||
				res[1].Error != nil || *res[1].ID != other2.ID() {
				t.Fatalf("binary batch: %d %s", status, data)
			}
		})
	}
}

// TestPostTxsBinaryAnswer: a binary batch sent with Accept
// application/octet-stream gets the binary answer (rpc.EncodeTxResults),
// which says what the JSON answer says: a transaction admitted, one
// refused with its id, one refused before it had an id.
func TestPostTxsBinaryAnswer(t *testing.T) {
	good := testkit.Transfer(testkit.Alice, bob, 7, 0, 3)
	replay := testkit.Transfer(testkit.Alice, bob, 8, 0, 1) // bad_nonce
	unhex := testkit.Transfer(testkit.Bob, alice, 1, 0, 2)
	sig := unhex.Signature.String()
	encUnhex := bytes.Replace(chain.EncodeTx(&unhex), []byte(sig), []byte(strings.ToUpper(sig)), 1)
	body := []byte{1, 3} // version, count
	for _, e := range [][]byte{encUnhex, chain.EncodeTx(&good), chain.EncodeTx(&replay)} {
		body = binary.AppendUvarint(body, uint64(len(e)))
		body = append(body, e...)
	}
	answer := func(accept string, body []byte) (*http.Response, []byte) {
		srv := httptest.NewServer(newTestHandler(newFake())) // each answer from a pool of its own
		defer srv.Close()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/txs", bytes.NewReader(body))
		req.Header.Set("Content-Type", rpc.ContentTypeTxBatch)
		return doAccepting(t, req, accept)
	}
	resp, data := answer("application/json", body)
	var want []rpc.SubmitResult
	if resp.StatusCode != 200 || json.Unmarshal(data, &want) != nil || len(want) != 3 {
		t.Fatalf("JSON answer: %d %s", resp.StatusCode, data)
	}
	if want[0].ID != nil || want[0].Error.Code != "bad_signature" || want[1].Status != rpc.TxPending || want[2].Error.Code != "bad_nonce" || *want[2].ID != replay.ID() {
		t.Fatalf("JSON answer: %s", data)
	}
	for _, accept := range []string{"application/octet-stream;q=0", "application/json, application/octet-stream;q=x"} {
		resp, data = answer(accept, body)
		var got []rpc.SubmitResult
		if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Vary") != "Accept" || json.Unmarshal(data, &got) != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Accept %q: %s, Vary %q: %s", accept, resp.Header.Get("Content-Type"), resp.Header.Get("Vary"), data)
		}
	}
	for _, accept := range []string{"application/octet-stream", "application/json;q=0.5, application/octet-stream;q=0.05"} {
		resp, data = answer(accept, body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != rpc.ContentTypeTxBatch {
			t.Fatalf("Accept %q: %d %s, %s", accept, resp.StatusCode, resp.Header.Get("Content-Type"), data)
		}
		got, err := rpc.DecodeTxResults(data, 3)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Accept %q: binary answer %+v (%v), want %+v", accept, got, err, want)
		}
	}
	// A malformed batch is refused in JSON whatever the Accept.
	resp, data = answer(rpc.ContentTypeTxBatch, body[:len(body)-1])
	var eb rpc.ErrorBody
	if resp.StatusCode != 400 || json.Unmarshal(data, &eb) != nil || eb.Error.Code != "bad_request" {
		t.Fatalf("truncated batch: %d %s", resp.StatusCode, data)
	}
}

// TestBlockTxIDsBinary: with Accept application/octet-stream the pages of
// GET /v1/blocks/txids are binary (rpc.DecodeBlockTxIDsPage), hold what
// the JSON pages hold, and are cut by the same byte bound with the same
// X-Next-From.
func TestBlockTxIDsBinary(t *testing.T) {
	f := newFake()
	base, _ := serveLimited(t, limitedHandler(f, Limits{MaxPageBytes: 2 << 10}), 0)
	read := func(accept, from string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/blocks/txids?limit=1000&from="+from, nil)
		return doAccepting(t, req, accept)
	}
	pages := 0
	for from := "0"; from != ""; pages++ {
		jresp, jdata := read("application/json", from)
		var want []rpc.BlockTxIDs
		if jresp.StatusCode != 200 || json.Unmarshal(jdata, &want) != nil {
			t.Fatalf("JSON page from %s: %d %.200s", from, jresp.StatusCode, jdata)
		}
		resp, data := read(rpc.ContentTypeTxBatch, from)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != rpc.ContentTypeTxBatch {
			t.Fatalf("binary page from %s: %d %s", from, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		got, err := rpc.DecodeBlockTxIDsPage(data, 1000)
		if err != nil || len(got) == 0 || len(got) < len(want) || !reflect.DeepEqual(got[:len(want)], want) {
			t.Fatalf("binary page from %s: %d blocks (%v), the JSON page %d", from, len(got), err, len(want))
		}
		if len(got) > 1 && len(data) > 2<<10 {
			t.Fatalf("binary page from %s: %d bytes over a 2 KiB budget with %d blocks", from, len(data), len(got))
		}
		next := resp.Header.Get(headerNextFrom)
		if next != "" && next != strconv.FormatUint(got[len(got)-1].Height+1, 10) {
			t.Fatalf("binary page from %s: X-Next-From %s after height %d", from, next, got[len(got)-1].Height)
		}
		from = next
		if pages > testHeight+2 {
			t.Fatal("paging does not end")
		}
	}
	if pages < 2 {
		t.Fatalf("%d pages: the byte bound never cut one", pages)
	}
}
