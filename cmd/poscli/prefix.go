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

// maxSearchMatches is how many entries of a kind GET /v1/search returns at
// most (daemon/api.MaxSearchMatches): a full list may have left some out.
const maxSearchMatches = 8

// search asks the node for the entries of kind starting with prefix.
func search(ctx context.Context, c *client.Client, prefix string, kind prefixKind) ([]string, error) {
	res, err := c.Search(ctx, prefix)
	if client.IsNotFound(err) || client.IsCode(err, "unavailable") {
		return nil, fmt.Errorf("%q is not a full %s, and the node at %s cannot look up short ones: give it in full", prefix, kind.what, c.BaseURL())
	}
	if err != nil {
		return nil, err
	}
	return kind.pick(res), nil
}

// resolvePrefix asks the node for the one entry of kind starting with
// prefix: none and several are errors that say so.
func resolvePrefix(ctx context.Context, c *client.Client, prefix string, kind prefixKind) (string, error) {
	list, err := search(ctx, c, prefix, kind)
	if err != nil {
		return "", err
	}
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

// splitShortAddress reads the form tables print addresses in, "fdea…084c"
// (chain.Address.Short; "..." too, as typed on a keyboard without "…"),
// into its hex head and tail, lower case.
func splitShortAddress(s string) (head, tail string, ok bool) {
	s = strings.ToLower(s)
	head, tail, ok = strings.Cut(s, "…")
	if !ok {
		head, tail, ok = strings.Cut(s, "...")
	}
	if !ok || !isHexPrefix(head, 40) || tail == "" || len(head)+len(tail) >= 40 || strings.Trim(tail, "0123456789abcdef") != "" {
		return "", "", false
	}
	return head, tail, true
}

// resolveShortAddress finds the one address on the node that starts with
// head and ends with tail (a table's "fdea…084c"): none and several are
// errors that say so.
func resolveShortAddress(ctx context.Context, c *client.Client, head, tail string) (string, error) {
	list, err := search(ctx, c, head, addrPrefix)
	if err != nil {
		return "", err
	}
	var match []string
	for _, a := range list {
		if strings.HasSuffix(a, tail) {
			match = append(match, a)
		}
	}
	short := head + "…" + tail
	switch {
	case len(match) == 1:
		return match[0], nil
	case len(match) > 3:
		return "", fmt.Errorf("%s is ambiguous: %d addresses match it (%s, …); give the full address", short, len(match), strings.Join(match[:3], ", "))
	case len(match) > 1:
		return "", fmt.Errorf("%s is ambiguous: %d addresses match it (%s); give the full address", short, len(match), strings.Join(match, ", "))
	case len(list) >= maxSearchMatches:
		// The node returned only some of the addresses starting with head.
		return "", fmt.Errorf("%s: too many addresses start with %s to find the one ending in %s; give the full address", short, head, tail)
	}
	return "", fmt.Errorf("no address matches %s on the node at %s", short, c.BaseURL())
}
