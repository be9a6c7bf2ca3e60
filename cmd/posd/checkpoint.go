package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain"
)

// --checkpoint HEIGHT:HASH (weak subjectivity, the v3 rules in docs/CONSENSUS.md): a block
// of the network's chain learnt out of band; the node refuses any chain
// with another block at that height, from peers
// (conflicts_with_checkpoint) or on its own disk (start refuses).

// checkpointValue is the flag's value: it parses as it is set, so the
// command line and POSD_CHECKPOINT give the same one-line error.
type checkpointValue struct{ dst **chain.Checkpoint }

func (v checkpointValue) String() string {
	if v.dst == nil || *v.dst == nil {
		return ""
	}
	return (*v.dst).String()
}

func (v checkpointValue) Set(s string) error {
	cp, err := parseCheckpoint(s)
	if err != nil {
		return err
	}
	*v.dst = &cp
	return nil
}

func (checkpointValue) Type() string { return "HEIGHT:HASH" }

// parseCheckpoint reads "HEIGHT:HASH", as chain.Checkpoint.String writes
// it (and poscli blocks shows heights and hashes).
func parseCheckpoint(s string) (chain.Checkpoint, error) {
	const want = "want HEIGHT:HASH, a block's height and its 64-hex-character hash"
	hs, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return chain.Checkpoint{}, fmt.Errorf("%s", want)
	}
	height, err := strconv.ParseUint(hs, 10, 64)
	if err != nil {
		return chain.Checkpoint{}, fmt.Errorf("height %q is not a whole number (%s)", hs, want)
	}
	h, err := chain.ParseHash(hash)
	if err != nil {
		return chain.Checkpoint{}, fmt.Errorf("%v (%s)", err, want)
	}
	return chain.Checkpoint{Height: height, Hash: h}, nil
}

// addCheckpointFlag adds --checkpoint to posd start.
func addCheckpointFlag(cmd *cobra.Command, dst **chain.Checkpoint) {
	cmd.Flags().Var(checkpointValue{dst: dst}, "checkpoint", "refuse any chain without this block (weak subjectivity): a fresh node syncs only the chain that has it")
	cmd.Example += "\n  posd start --home /tmp/n4 --join http://127.0.0.1:5001 --checkpoint 1200:<hash of block 1200>"
}
