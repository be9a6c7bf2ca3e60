package api

import (
	"net/http"
	"strings"

	"github.com/poslab/posd/chain"
)

// SearchResult is GET /v1/search?prefix=P: what the short hashes tables
// show (`930037b285`) can be typed back as, git-style. Each list holds at
// most MaxSearchMatches entries; more than one entry in a list means the
// prefix is ambiguous there.
type SearchResult struct {
	Prefix   string          `json:"prefix"`
	Blocks   []chain.Hash    `json:"blocks"`   // stored blocks whose hash starts with prefix
	Txs      []chain.Hash    `json:"txs"`      // committed or pending transactions
	Accounts []chain.Address `json:"accounts"` // addresses with a balance, stake or nonce
}

// Limits of GET /v1/search.
const (
	MinSearchPrefix  = 4
	MaxSearchMatches = 8
)

// PrefixSearcher is optional on a Backend: the entries of each kind whose
// hex starts with prefix (lower case, MinSearchPrefix to 64 characters), at
// most max of each.
type PrefixSearcher interface {
	SearchPrefix(prefix string, max int) (SearchResult, error)
}

// search is GET /v1/search?prefix=P.
func (s *server) search(w http.ResponseWriter, r *http.Request) error {
	ps, ok := s.b.(PrefixSearcher)
	if !ok {
		return apiErr(codeUnavailable, "this node cannot search by prefix")
	}
	p := strings.ToLower(r.URL.Query().Get("prefix"))
	if len(p) < MinSearchPrefix || len(p) > 64 || strings.Trim(p, "0123456789abcdef") != "" {
		return apiErr(codeBadRequest, "prefix must be %d to 64 hex characters, got %q", MinSearchPrefix, r.URL.Query().Get("prefix"))
	}
	res, err := ps.SearchPrefix(p, MaxSearchMatches)
	if err != nil {
		return err
	}
	res.Prefix = p
	res.Blocks, res.Txs, res.Accounts = nonNil(res.Blocks), nonNil(res.Txs), nonNil(res.Accounts)
	s.writeJSON(w, r, http.StatusOK, res)
	return nil
}
