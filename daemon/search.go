package daemon

import (
	"slices"
	"strings"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/api"
)

// SearchPrefix implements api.PrefixSearcher: blocks and committed
// transactions from the store's sorted keys (a seek, not a scan), pending
// transactions from the pool, accounts from the store.
func (n *Node) SearchPrefix(prefix string, max int) (api.SearchResult, error) {
	var res api.SearchResult
	var err error
	if res.Blocks, err = n.st.BlocksWithPrefix(prefix, max); err != nil {
		return res, err
	}
	if res.Txs, err = n.st.TxsWithPrefix(prefix, max); err != nil {
		return res, err
	}
	// The pool has no sorted index: look through it only while it is small,
	// so an unauthenticated lookup stays cheap.
	pending := []chain.Transaction(nil)
	if n.pool.Len() <= maxPoolSearch {
		pending = n.pool.All()
	}
	for _, tx := range pending {
		if len(res.Txs) >= max {
			break
		}
		if id := tx.ID(); strings.HasPrefix(id.String(), prefix) && !slices.Contains(res.Txs, id) {
			res.Txs = append(res.Txs, id)
		}
	}
	if len(prefix) <= 40 {
		if res.Accounts, err = n.st.AccountsWithPrefix(prefix, max); err != nil {
			return res, err
		}
	}
	return res, nil
}

// maxPoolSearch bounds the pool SearchPrefix hashes through.
const maxPoolSearch = 10000

var _ api.PrefixSearcher = (*Node)(nil)
