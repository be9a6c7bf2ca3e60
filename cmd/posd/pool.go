package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon"
	"github.com/poslab/posd/internal/atomicfile"
)

// poolFile keeps the pending transactions across a clean restart: the
// node's pool lives in memory only, and the original lost it silently.
const poolFile = "pending.json"

// savePool writes the node's pending transactions into its home at
// shutdown, and says so; a crash still loses them (the log says that too).
func savePool(node *daemon.Node, log *slog.Logger) {
	txs := node.API().PendingTxs()
	if len(txs) == 0 {
		return
	}
	path := filepath.Join(node.Home(), poolFile)
	data, err := json.Marshal(txs)
	if err == nil {
		err = atomicfile.Replace(path, data, 0o600)
	}
	if err != nil {
		log.Error("LOST: the pending transactions could not be saved; send them again after the restart",
			"count", len(txs), "err", err)
		return
	}
	log.Warn("the pool is not kept in the chain: pending transactions saved for the next start (a crash would lose them)",
		"count", len(txs), "file", path)
}

// restorePool submits the transactions savePool left, then deletes the
// file; those no longer valid (committed meanwhile, or spent) are dropped
// with a count.
func restorePool(node *daemon.Node, log *slog.Logger) {
	path := filepath.Join(node.Home(), poolFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var txs []chain.Transaction
	if err == nil {
		err = json.Unmarshal(data, &txs)
	}
	if err != nil {
		log.Error("cannot read the pending transactions saved at the last shutdown; they are lost", "file", path, "err", err)
		return
	}
	accepted := 0
	if len(txs) > 0 {
		_, errs := node.API().SubmitTxs(txs)
		for _, e := range errs {
			if e == nil {
				accepted++
			}
		}
	}
	if err := os.Remove(path); err != nil {
		log.Warn("could not delete the saved pool", "file", path, "err", err)
	}
	log.Info("pending transactions from the last shutdown submitted again", "accepted", accepted, "dropped", len(txs)-accepted)
}
