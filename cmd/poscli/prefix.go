package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/client"
)

// Short hashes: tables print hashes and addresses shortened, so poscli
// takes a unique prefix back wherever it takes a block hash, a transaction
// id or an address, as git takes abbreviated commit ids. The node resolves
// prefixes (GET /v1/search); at least minPrefix hex characters.
const minPrefix = 4

// isHexPrefix reports whether s (lower case) could be a short hash: hex,
// at least minPrefix and fewer than full characters.
func isHexPrefix(s string, full int) bool {
	return len(s) >= minPrefix && len(s) < full && strings.Trim(s, "0123456789abcdef") == ""
}

// prefixKind is what a prefix should name.
type prefixKind struct {
	what  string // "block hash", "transaction id", "address"
	whats string // plural
	pick  func(client.SearchResult) []string
}

var (
	blockPrefix = prefixKind{"block hash", "block hashes", func(r client.SearchResult) []string { return hashStrings(r.Blocks) }}
	txPrefix    = prefixKind{"transaction id", "transaction ids", func(r client.SearchResult) []string { return hashStrings(r.Txs) }}
	addrPrefix  = prefixKind{"address", "addresses", func(r client.SearchResult) []string {
		out := make([]string, len(r.Accounts))
		for i, a := range r.Accounts {
			out[i] = string(a)
		}
		return out
	}}
)

func hashStrings(hs []chain.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

// resolvePrefix asks the node for the one entry of kind starting with
// prefix: none and several are errors that say so.
func resolvePrefix(ctx context.Context, c *client.Client, prefix string, kind prefixKind) (string, error) {
	res, err := c.Search(ctx, prefix)
	if client.IsNotFound(err) || client.IsCode(err, "unavailable") {
		return "", fmt.Errorf("%q is not a full %s, and the node at %s cannot look up short ones: give it in full", prefix, kind.what, c.BaseURL())
	}
	if err != nil {
		return "", err
	}
	list := kind.pick(res)
	switch len(list) {
	case 0:
		return "", fmt.Errorf("no %s starts with %s on the node at %s", kind.what, prefix, c.BaseURL())
	case 1:
		return list[0], nil
	}
	shown := make([]string, 0, 3)
	for _, s := range list[:min(3, len(list))] {
		shown = append(shown, s[:min(len(s), len(prefix)+4)]+"…")
	}
	more := ""
	if len(list) > 3 {
		more = ", …"
	}
	return "", fmt.Errorf("%s is ambiguous: %d %s start with it (%s%s); give more characters", prefix, len(list), kind.whats, strings.Join(shown, ", "), more)
}
