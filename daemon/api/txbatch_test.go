package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
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

// TestPostTxsBinary: a binary batch is admitted item by item like a JSON
// one; malformed or oversized bodies are 4xx JSON errors and admit nothing.
func TestPostTxsBinary(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(newTestHandler(f))
	defer srv.Close()

	good := signed(aliceKey, chain.TxTransfer, bob, 7, 3)
	replay := signed(aliceKey, chain.TxTransfer, bob, 8, 1) // bad_nonce
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

	valid := rpc.EncodeTxBatch([]chain.Transaction{signed(aliceKey, chain.TxTransfer, bob, 9, 4)})
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
