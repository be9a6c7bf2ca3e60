package api

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzRequests: every request decoder of the API (admin bodies, query
// strings, path parameters, cursors) answers a client's garbage with a 4xx
// JSON error, never a 5xx or a panic.
func FuzzRequests(f *testing.F) {
	for _, seed := range []struct {
		route uint8
		param string
		body  string
	}{
		{0, "", `{"block_size":5,"block_interval_ms":100}`},
		{0, "", `{"block_size":-1}`},
		{1, "", `{"amount":5}`},
		{1, "", `{"amount":"x"}`},
		{2, "from=1&limit=3", ""},
		{2, "limit=0", ""},
		{2, "from=18446744073709551615", ""},
		{3, "limit=2&after=" + strings.Repeat("ab", 32), ""},
		{4, "after=" + string(alice), ""},
		{5, "1203", ""},
		{5, strings.Repeat("f", 64), ""},
		{6, "99999999999999999999", ""},
		{7, "%zz", ""},
	} {
		f.Add(seed.route, seed.param, []byte(seed.body))
	}
	h := NewHandler(Options{Backend: newFake(), Token: testToken, MaxBatch: 5, MaxBodyBytes: 64 << 10})
	f.Fuzz(func(t *testing.T, route uint8, param string, body []byte) {
		var method, target string
		esc := url.PathEscape(param)
		switch route % 8 {
		case 0:
			method, target = "PUT", "/v1/config"
		case 1:
			method, target = "POST", "/v1/stake"
		case 2:
			method, target = "GET", "/v1/blocks?"+param
		case 3:
			method, target = "GET", "/v1/txs/pending?"+param
		case 4:
			method, target = "GET", "/v1/accounts?"+param
		case 5:
			method, target = "GET", "/v1/blocks/"+esc
		case 6:
			method, target = "GET", "/stakes/"+esc
		case 7:
			method, target = "GET", "/v1/txs/"+esc
		}
		req := httptest.NewRequest(method, "/", bytes.NewReader(body))
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return // not a request a client can send
		}
		req.URL = u
		req.RequestURI = target
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: status %d %s", method, target, body, rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: invalid JSON answer %q", method, target, rec.Body)
		}
	})
}
