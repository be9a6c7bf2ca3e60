package main

import (
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/keystore"
)

func TestParseCheckpoint(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	cp, err := parseCheckpoint(" 12:" + hash + " ")
	if err != nil || cp.Height != 12 || cp.Hash.String() != hash {
		t.Fatalf("got %v, %v", cp, err)
	}
	if back, err := parseCheckpoint(cp.String()); err != nil || back != cp {
		t.Fatalf("String does not parse back: %v, %v", back, err)
	}
	for _, c := range []struct{ in, want string }{
		{"", "want HEIGHT:HASH"},
		{"12", "want HEIGHT:HASH"},
		{hash, "want HEIGHT:HASH"},
		{"x:" + hash, `height "x" is not a whole number`},
		{"-1:" + hash, "not a whole number"},
		{"12:abc", "64 hex characters"},
		{"12:" + strings.Repeat("zz", 32), "not hex"},
		{hash + ":12", "not a whole number"},
	} {
		if _, err := parseCheckpoint(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error with %q", c.in, err, c.want)
		}
	}
}

// TestCheckpointFlagRealNodes: `posd start --checkpoint` on real
// processes. A fresh node joining a network whose chain lacks its
// checkpoint refuses the block at that height (the peer's fault, logged)
// and stays below it; one given the chain's own block syncs it; a node
// whose stored chain has another block there does not start, and a
// malformed checkpoint is one red line and exit 1.
func TestCheckpointFlagRealNodes(t *testing.T) {
	a := startPosd(t, t.TempDir(), freePort(t), "--genesis", "--chain-id", "cp")
	k, _ := keystore.Generate()
	tx := a.sign(k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 10})
	a.submit(tx)
	info := a.waitCommitted(tx.ID())
	right := chain.Checkpoint{Height: *info.Height, Hash: *info.BlockHash}
	wrong := chain.Checkpoint{Height: right.Height, Hash: chain.Hash{0xee}}

	b := startPosd(t, t.TempDir(), freePort(t), "--join", a.url, "--checkpoint", wrong.String())
	waitFor(t, 60*time.Second, "the node with another checkpoint to refuse the block", func() bool {
		return strings.Contains(b.log.String(), "conflicts_with_checkpoint")
	})
	var refusals []string
	for _, l := range strings.Split(b.log.String(), "\n") {
		if strings.Contains(l, "conflicts_with_checkpoint") {
			refusals = append(refusals, l)
		}
	}
	if !strings.Contains(refusals[0], "block refused") {
		t.Fatalf("the refusal is not logged as a refused block: %s", refusals[0])
	}
	t.Logf("%d lines name the refusal:\n%s", len(refusals), strings.Join(refusals, "\n"))
	if h := b.status().Height; h >= right.Height {
		t.Fatalf("node with another checkpoint synced to height %d, past %d", h, right.Height)
	}

	cHome := t.TempDir()
	c := startPosd(t, cHome, freePort(t), "--join", a.url, "--checkpoint", right.String())
	waitFor(t, 60*time.Second, "the node with the chain's checkpoint to sync the transaction", func() bool {
		var got struct {
			BlockHash *chain.Hash `json:"block_hash"`
		}
		code, _ := c.call("GET", "/v1/txs/"+tx.ID().String(), nil, "", &got)
		return code == 200 && got.BlockHash != nil && *got.BlockHash == right.Hash
	})
	if strings.Contains(c.log.String(), "conflicts_with_checkpoint") {
		t.Fatalf("the right checkpoint refused a block:\n%s", c.log.String())
	}
	c.stop()

	refusedStart(t, cHome, nil, []string{"--join", a.url, "--checkpoint", wrong.String()},
		"not the checkpoint "+wrong.String(), "start with an empty home")

	for _, bad := range []string{"12", "x:" + right.Hash.String(), "1:abc"} {
		out := refusedStart(t, t.TempDir(), nil, []string{"--checkpoint", bad}, "error: ", "--checkpoint", "HEIGHT:HASH")
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 {
			t.Errorf("--checkpoint %q: %d lines, want one:\n%s", bad, len(lines), out)
		}
	}
	// The environment gives the same error.
	refusedStart(t, t.TempDir(), []string{"POSD_CHECKPOINT=12"}, nil, "POSD_CHECKPOINT", "HEIGHT:HASH")
}
