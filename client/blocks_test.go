package client

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// Blocks follows X-Next-From to the limit or the head, and refuses a
// cursor that does not move on (it would loop for ever).
func TestBlocksFollowsNextFrom(t *testing.T) {
	chainOf := testChain(t, 49)
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

// BlockTxIDs follows X-Next-From as Blocks does, from a height or from the
// newest limit blocks (where the node starts the list and pages ascending,
// with the same cursor), and refuses a cursor that does not move on;
// from a node writing binary pages (asked for in Accept) as from one
// writing JSON.
func TestBlockTxIDsFollowsNextFrom(t *testing.T) {
	chainOf := make([]rpc.BlockTxIDs, 50)
	for i := range chainOf {
		chainOf[i] = rpc.BlockTxIDs{Height: uint64(i), TxIDs: []chain.Hash{{byte(i)}}}
	}
	const page, defaultLimit = 7, 20
	cases := []struct {
		name     string
		cursor   func(next int) string // X-Next-From for a page cut before height next
		from     *uint64
		limit    int
		want     []uint64 // first and last height; nil: an error
		requests int
	}{
		{"limit reached", strconv.Itoa, ptr(uint64(3)), 20, []uint64{3, 22}, 3},
		{"head reached", strconv.Itoa, ptr(uint64(40)), 20, []uint64{40, 49}, 2},
		{"one page", strconv.Itoa, ptr(uint64(0)), 5, []uint64{0, 4}, 1},
		{"newest", strconv.Itoa, nil, 15, []uint64{35, 49}, 3},
		{"newest in one page", strconv.Itoa, nil, 5, []uint64{45, 49}, 1},
		{"newest, all of a short chain", strconv.Itoa, nil, 60, []uint64{0, 49}, 8},
		{"no limit reads one page", strconv.Itoa, ptr(uint64(3)), 0, []uint64{3, 9}, 1},
		{"past the head", strconv.Itoa, ptr(uint64(60)), 20, []uint64{}, 1},
		{"cursor stuck", func(int) string { return "3" }, ptr(uint64(3)), 20, nil, 1},
		{"cursor skips", func(n int) string { return strconv.Itoa(n + 1) }, ptr(uint64(3)), 20, nil, 1},
		{"cursor not a height", func(int) string { return "x" }, nil, 20, nil, 1},
	}
	for _, tc := range cases {
		for _, binary := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/binary=%v", tc.name, binary), func(t *testing.T) {
				srv := newServer(t, map[string]http.HandlerFunc{
					// As the node does: limit defaults to 20, from to the
					// newest limit blocks; a page is cut (here at 7 blocks,
					// there at its byte bound) with the next height in
					// X-Next-From.
					"GET /v1/blocks/txids": func(w http.ResponseWriter, r *http.Request) {
						limit := defaultLimit
						if l := r.URL.Query().Get("limit"); l != "" {
							limit, _ = strconv.Atoi(l)
						}
						from := max(len(chainOf)-limit, 0)
						if f := r.URL.Query().Get("from"); f != "" {
							from, _ = strconv.Atoi(f)
						}
						from = min(from, len(chainOf))
						end := min(from+limit, len(chainOf))
						if end-from > page {
							end = from + page
							w.Header().Set("X-Next-From", tc.cursor(end))
						}
						if !binary {
							reply(200, chainOf[from:end])(w, r)
							return
						}
						if !strings.HasPrefix(r.Header.Get("Accept"), rpc.ContentTypeTxBatch) {
							t.Errorf("Accept %q: the binary page not asked for", r.Header.Get("Accept"))
						}
						out := []byte{rpc.BlockTxIDsPageVersion}
						for _, b := range chainOf[from:end] {
							out, _ = b.AppendBinary(out)
						}
						w.Header().Set("Content-Type", rpc.ContentTypeTxBatch)
						_, _ = w.Write(out)
					},
				})
				got, err := New(srv.URL).BlockTxIDs(context.Background(), tc.from, tc.limit)
				switch {
				case tc.want == nil:
					if err == nil || !strings.Contains(err.Error(), "X-Next-From") {
						t.Fatalf("BlockTxIDs = %d blocks, %v; want an error naming X-Next-From", len(got), err)
					}
				case err != nil:
					t.Fatal(err)
				case len(tc.want) == 0:
					if len(got) != 0 {
						t.Fatalf("BlockTxIDs = %d blocks past the head", len(got))
					}
				default:
					if len(got) == 0 || got[0].Height != tc.want[0] || got[len(got)-1].Height != tc.want[1] || len(got) != int(tc.want[1]-tc.want[0]+1) {
						t.Fatalf("BlockTxIDs = %d blocks %v; want heights %d to %d", len(got), heights(got), tc.want[0], tc.want[1])
					}
					for i, b := range got {
						if i > 0 && b.Height != got[i-1].Height+1 || len(b.TxIDs) != 1 || b.TxIDs[0] != (chain.Hash{byte(b.Height)}) {
							t.Fatalf("block %d: %+v", i, b)
						}
					}
				}
				if n := len(srv.reqs); n != tc.requests {
					t.Errorf("%d requests, want %d", n, tc.requests)
				}
			})
		}
	}
}

func heights(bs []rpc.BlockTxIDs) []uint64 {
	var out []uint64
	for _, b := range bs {
		out = append(out, b.Height)
	}
	return out
}
