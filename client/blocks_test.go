package client

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
)

// Blocks follows X-Next-From to the limit or the head, and refuses a
// cursor that does not move on (it would loop for ever).
func TestBlocksFollowsNextFrom(t *testing.T) {
	chainOf := make([]chain.Block, 50)
	for i := range chainOf {
		chainOf[i] = testBlock(uint64(i))
	}
	const page = 7
	cases := []struct {
		name     string
		cursor   func(next int) string // X-Next-From for a page cut before height next
		from     *uint64
		limit    int
		want     int // blocks; -1: an error
		requests int
	}{
		{"limit reached", strconv.Itoa, ptr(uint64(3)), 20, 20, 3},
		{"head reached", strconv.Itoa, ptr(uint64(40)), 20, 10, 2},
		{"one page", strconv.Itoa, ptr(uint64(0)), 5, 5, 1},
		{"newest", strconv.Itoa, nil, 15, 15, 3}, // 43-49, then 35-41 and 42 below
		{"newest in one page", strconv.Itoa, nil, 5, 5, 1},
		{"newest, all of a short chain", strconv.Itoa, nil, 60, 50, 8},
		{"cursor stuck", func(int) string { return "3" }, ptr(uint64(3)), 20, -1, 1},
		{"cursor skips", func(n int) string { return strconv.Itoa(n + 1) }, ptr(uint64(3)), 20, -1, 1},
		{"cursor not a height", func(int) string { return "x" }, ptr(uint64(3)), 20, -1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, map[string]http.HandlerFunc{
				"GET /v1/blocks": func(w http.ResponseWriter, r *http.Request) {
					limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
					f := r.URL.Query().Get("from")
					if f == "" {
						// The newest blocks that fit one page, no cursor
						// (docs/API.md).
						reply(200, chainOf[len(chainOf)-min(limit, page):])(w, r)
						return
					}
					from, _ := strconv.Atoi(f)
					end := min(from+limit, len(chainOf))
					if end-from > page {
						end = from + page
						w.Header().Set("X-Next-From", tc.cursor(end))
					}
					reply(200, chainOf[from:end])(w, r)
				},
			})
			bs, err := New(srv.URL).Blocks(context.Background(), tc.from, tc.limit)
			if tc.want < 0 {
				if err == nil || !strings.Contains(err.Error(), "X-Next-From") {
					t.Fatalf("Blocks = %d blocks, %v; want an error naming X-Next-From", len(bs), err)
				}
			} else {
				if err != nil || len(bs) != tc.want {
					t.Fatalf("Blocks = %d blocks, %v; want %d", len(bs), err, tc.want)
				}
				for i := 1; i < len(bs); i++ {
					if bs[i].Height != bs[i-1].Height+1 {
						t.Fatalf("block %d at height %d after %d", i, bs[i].Height, bs[i-1].Height)
					}
				}
			}
			if n := len(srv.reqs); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
		})
	}
}
