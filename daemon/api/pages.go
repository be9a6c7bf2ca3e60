package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// Paging. A list answer is a JSON array of at most Limits.MaxPageBytes (and
// at least one item); when items were left out, a header names the cursor
// of the next page:
//
//	GET /v1/blocks?from=H       X-Next-From: the first height not returned
//	GET /v1/txs/pending?after=ID  X-Next-After: the last id returned
//	GET /v1/accounts?after=ADDR   X-Next-After: the last address returned
//
// Items are encoded one at a time into the page, so a page never costs
// more than its bytes plus one item, whatever the limit asked for.

// Limits of GET /v1/blocks.
const (
	defaultBlocksLimit = 20
	maxBlocksLimit     = 1000
)

// Cursor headers.
const (
	headerNextFrom  = "X-Next-From"
	headerNextAfter = "X-Next-After"
)

// pageWriter builds one JSON array within a byte budget, or a binary
// page: a version byte, then the items' binary encodings.
type pageWriter struct {
	buf    bytes.Buffer
	max    int
	items  int
	binary bool
}

func newPage(max int) *pageWriter {
	p := &pageWriter{max: max}
	p.buf.WriteByte('[')
	return p
}

// newBinaryPage is a binary page starting with version; its items must be
// encoding.BinaryAppenders.
func newBinaryPage(max int, version byte) *pageWriter {
	p := &pageWriter{max: max, binary: true}
	p.buf.WriteByte(version)
	return p
}

// add appends v unless the page is full (the first item always fits); it
// reports whether v went in.
func (p *pageWriter) add(v any) (bool, error) {
	if p.binary {
		return p.addBinary(v)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	if p.items > 0 && p.buf.Len()+1+len(data)+2 > p.max {
		return false, nil
	}
	if p.items > 0 {
		p.buf.WriteByte(',')
	}
	p.buf.Write(data)
	p.items++
	return true, nil
}

func (p *pageWriter) addBinary(v any) (bool, error) {
	enc, ok := v.(encoding.BinaryAppender)
	if !ok {
		return false, fmt.Errorf("api: %T in a binary page", v)
	}
	mark := p.buf.Len()
	data, err := enc.AppendBinary(p.buf.AvailableBuffer())
	if err != nil {
		return false, err
	}
	if p.items > 0 && mark+len(data) > p.max {
		return false, nil
	}
	p.buf.Write(data)
	p.items++
	return true, nil
}

// write sends the page.
func (p *pageWriter) write(w http.ResponseWriter) {
	h := w.Header()
	if p.binary {
		h.Set("Content-Type", rpc.ContentTypeTxBatch)
	} else {
		p.buf.WriteString("]\n")
		h.Set("Content-Type", "application/json")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(p.buf.Bytes())
}

// blocks is GET /v1/blocks?from=H&limit=N: ascending from H, or without
// from the newest N (still ascending); both cut at MaxPageBytes. Blocks are
// read a few at a time, never the whole limit at once.
func (s *server) blocks(w http.ResponseWriter, r *http.Request) error {
	br, err := parseBlockRange(r, defaultBlocksLimit, maxBlocksLimit)
	if err != nil {
		return err
	}
	if !br.hasFrom {
		return s.newestBlocks(w, br.limit)
	}
	return s.pageBlocks(w, newPage(s.limits.MaxPageBytes), br.from, br.limit, func(b *chain.Block) any { return b })
}

// newestBlocks answers GET /v1/blocks without from: the newest limit
// blocks that fit in a page, read from the head down, written ascending.
func (s *server) newestBlocks(w http.ResponseWriter, limit int) error {
	top := s.b.Height()
	var encoded [][]byte
	size := 2
	for h := int64(top); h >= 0 && len(encoded) < limit; {
		n := min(limit-len(encoded), blockchainChunk, int(h)+1)
		chunk, err := s.b.Blocks(uint64(h)-uint64(n)+1, n)
		if err != nil {
			return err
		}
		if len(chunk) == 0 {
			break
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			data, err := json.Marshal(chunk[i])
			if err != nil {
				return err
			}
			if len(encoded) > 0 && size+len(data)+1 > s.limits.MaxPageBytes {
				return writeReversed(w, encoded)
			}
			encoded = append(encoded, data)
			size += len(data) + 1
		}
		h -= int64(len(chunk))
	}
	return writeReversed(w, encoded)
}

func writeReversed(w http.ResponseWriter, items [][]byte) error {
	p := &pageWriter{}
	p.buf.WriteByte('[')
	for i := len(items) - 1; i >= 0; i-- {
		if i < len(items)-1 {
			p.buf.WriteByte(',')
		}
		p.buf.Write(items[i])
	}
	p.write(w)
	return nil
}

// pendingTxs is GET /v1/txs/pending (and the original's /transactions):
// the pool in arrival order from after the transaction ?after=ID, at most
// ?limit=N (default: as many as fit the page). A cursor that has left the
// pool (committed, evicted) starts again from the oldest: ids are unique,
// so a client paging through a changing pool de-duplicates by id.
func (s *server) pendingTxs(w http.ResponseWriter, r *http.Request) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return apiErr(codeBadRequest, "query: %v", err)
	}
	limit, err := queryLimit(q)
	if err != nil {
		return err
	}
	var after chain.Hash
	hasAfter := q.Has("after")
	if hasAfter {
		if after, err = chain.ParseHash(q.Get("after")); err != nil {
			return apiErr(codeBadHash, "after: %v", err)
		}
	}
	txs := s.b.PendingTxs()
	start := 0
	if hasAfter {
		for i := range txs {
			if txs[i].ID() == after {
				start = i + 1
				break
			}
		}
	}
	page := newPage(s.limits.MaxPageBytes)
	var last chain.Hash
	for i := start; i < len(txs); i++ {
		if page.items == limit {
			w.Header().Set(headerNextAfter, last.String())
			break
		}
		id := txs[i].ID()
		ok, err := page.add(txWithID{txs[i], id})
		if err != nil {
			return err
		}
		if !ok {
			w.Header().Set(headerNextAfter, last.String())
			break
		}
		last = id
	}
	page.write(w)
	return nil
}

// txWithID encodes a transaction as chain.Transaction does (it already
// carries its id); the id is computed once for the cursor as well.
type txWithID struct {
	tx chain.Transaction
	id chain.Hash
}

func (t txWithID) MarshalJSON() ([]byte, error) { return json.Marshal(t.tx) }

// accounts is GET /v1/accounts: address order, from after ?after=ADDR, at
// most ?limit=N or a page.
func (s *server) accounts(w http.ResponseWriter, r *http.Request) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return apiErr(codeBadRequest, "query: %v", err)
	}
	limit, err := queryLimit(q)
	if err != nil {
		return err
	}
	var after chain.Address
	if q.Has("after") {
		if after, err = chain.ParseAddress(q.Get("after")); err != nil {
			return err
		}
	}
	list := s.b.Accounts()
	page := newPage(s.limits.MaxPageBytes)
	var last chain.Address
	for _, a := range list {
		if after != "" && a.Address <= after {
			continue
		}
		if page.items == limit {
			w.Header().Set(headerNextAfter, string(last))
			break
		}
		a.PendingNonce = nil // only the single-account view carries it
		ok, err := page.add(a)
		if err != nil {
			return err
		}
		if !ok {
			w.Header().Set(headerNextAfter, string(last))
			break
		}
		last = a.Address
	}
	page.write(w)
	return nil
}

// queryLimit reads ?limit=N (1..), or no limit (-1) but the page's bytes.
func queryLimit(q url.Values) (int, error) {
	if !q.Has("limit") {
		return -1, nil
	}
	n, err := strconv.Atoi(q.Get("limit"))
	if err != nil || n < 1 {
		return 0, apiErr(codeBadRequest, "limit must be a positive integer, got %q", q.Get("limit"))
	}
	return n, nil
}

// healthz is GET /healthz: 200 "ok", or 503 "unhealthy" with the reason
// while the backend reports a fault (HealthChecker): commits failing, the
// node halted.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) error {
	if hc, ok := s.b.(HealthChecker); ok {
		height, err := hc.Health()
		if err != nil {
			s.writeJSON(w, r, http.StatusServiceUnavailable, healthBody{Status: "unhealthy", Height: height, Error: err.Error()})
			return nil
		}
		s.writeJSON(w, r, http.StatusOK, rpc.Health{Status: "ok", Height: height})
		return nil
	}
	s.writeJSON(w, r, http.StatusOK, rpc.Health{Status: "ok", Height: s.b.Height()})
	return nil
}

// healthBody is rpc.Health with the reason of an unhealthy answer.
type healthBody struct {
	Status string `json:"status"`
	Height uint64 `json:"height"`
	Error  string `json:"error,omitempty"`
}

// stakes is GET /v1/stakes: largest first, then address; from after
// ?after=ADDR (a staker that left starts again from the top), at most
// ?limit=N or a page.
func (s *server) stakes(w http.ResponseWriter, r *http.Request) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return apiErr(codeBadRequest, "query: %v", err)
	}
	limit, err := queryLimit(q)
	if err != nil {
		return err
	}
	list := s.b.Stakes()
	start := 0
	if q.Has("after") {
		after, err := chain.ParseAddress(q.Get("after"))
		if err != nil {
			return err
		}
		for i := range list {
			if list[i].Address == after {
				start = i + 1
				break
			}
		}
	}
	page := newPage(s.limits.MaxPageBytes)
	var last chain.Address
	for _, st := range list[start:] {
		if page.items == limit {
			w.Header().Set(headerNextAfter, string(last))
			break
		}
		ok, err := page.add(st)
		if err != nil {
			return err
		}
		if !ok {
			w.Header().Set(headerNextAfter, string(last))
			break
		}
		last = st.Address
	}
	page.write(w)
	return nil
}

// balanceMap is the original's GET /accounts: {address: balance}, in
// address order from after ?after=ADDR, cut at a page (X-Next-After).
func (s *server) balanceMap(w http.ResponseWriter, r *http.Request) error {
	list := s.b.Accounts()
	return s.addressMap(w, r, len(list), func(i int) (chain.Address, uint64) { return list[i].Address, list[i].Balance })
}

// stakeMap is the original's GET /stakes: {address: stake}, paged as
// /accounts.
func (s *server) stakeMap(w http.ResponseWriter, r *http.Request) error {
	list := s.b.Stakes()
	slices.SortFunc(list, func(a, b rpc.Stake) int { return strings.Compare(string(a.Address), string(b.Address)) })
	return s.addressMap(w, r, len(list), func(i int) (chain.Address, uint64) { return list[i].Address, list[i].Stake })
}

// addressMap writes {address: value} for the n entries of at (address
// order) after ?after=ADDR, within a page.
func (s *server) addressMap(w http.ResponseWriter, r *http.Request, n int, at func(int) (chain.Address, uint64)) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return apiErr(codeBadRequest, "query: %v", err)
	}
	var after chain.Address
	if q.Has("after") {
		if after, err = chain.ParseAddress(q.Get("after")); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	items := 0
	var last chain.Address
	for i := 0; i < n; i++ {
		a, v := at(i)
		if after != "" && a <= after {
			continue
		}
		key, _ := json.Marshal(a)
		entry := append(append(key, ':'), strconv.FormatUint(v, 10)...)
		if items > 0 && buf.Len()+1+len(entry)+2 > s.limits.MaxPageBytes {
			w.Header().Set(headerNextAfter, string(last))
			break
		}
		if items > 0 {
			buf.WriteByte(',')
		}
		buf.Write(entry)
		items++
		last = a
	}
	buf.WriteString("}\n")
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}
