package daemon

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/keystore"
)

// newHome makes a home with a chain (one node, a new network) and closes it.
func newHome(t *testing.T) Config {
	t.Helper()
	cfg := Config{Home: filepath.Join(t.TempDir(), "home"), NewNetwork: true, NoNetwork: true, Genesis: DefaultGenesisParams()}
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.NewNetwork = false
	return cfg
}

func openErr(t *testing.T, cfg Config) error {
	t.Helper()
	n, err := Open(cfg)
	if err == nil {
		n.Close()
	}
	return err
}

// F3: a home whose key vanished while its chain stayed refuses to start,
// unless told to make a new key.
func TestKeyVanishedRefused(t *testing.T) {
	cfg := newHome(t)
	if err := os.Remove(filepath.Join(cfg.Home, KeyFile)); err != nil {
		t.Fatal(err)
	}
	err := openErr(t, cfg)
	if !errors.Is(err, ErrKeyMissing) || !strings.Contains(err.Error(), "--new-key") {
		t.Fatalf("Open without the key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Home, KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a key was made although the start was refused")
	}
	cfg.NewKey = true
	if err := openErr(t, cfg); err != nil {
		t.Fatalf("Open with NewKey: %v", err)
	}
}

// F4: POSD_KEY_PASSPHRASE decrypts the key at the default path too.
func TestPassphraseForDefaultKey(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	k, _ := keystore.Generate()
	if err := keystore.Save(filepath.Join(home, KeyFile), k, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Home: home, NewNetwork: true, NoNetwork: true, Genesis: DefaultGenesisParams()}
	t.Setenv(PassphraseEnv, "")
	if err := openErr(t, cfg); !errors.Is(err, keystore.ErrPassphraseRequired) || !strings.Contains(err.Error(), PassphraseEnv) {
		t.Fatalf("encrypted default key without the variable: %v", err)
	}
	t.Setenv(PassphraseEnv, "pw")
	n, err := Open(cfg)
	if err != nil {
		t.Fatalf("encrypted default key with the variable: %v", err)
	}
	defer n.Close()
	if n.Address() != k.Address() {
		t.Fatal("the node loaded another key")
	}
}

// F9: an edited genesis.json is refused; a reformatted one is the same
// genesis; a deleted one is written again.
func TestEditedGenesisRefused(t *testing.T) {
	cfg := newHome(t)
	path := filepath.Join(cfg.Home, GenesisFile)
	orig, _ := os.ReadFile(path)
	var m map[string]any
	if err := json.Unmarshal(orig, &m); err != nil {
		t.Fatal(err)
	}
	m["chain_id"] = "edited"
	edited, _ := json.Marshal(m)
	os.WriteFile(path, edited, 0o644)
	if err := openErr(t, cfg); err == nil || !strings.Contains(err.Error(), "differs from the genesis of the chain") {
		t.Fatalf("edited genesis.json: %v", err)
	}
	compact := new(bytes.Buffer)
	json.Compact(compact, orig)
	os.WriteFile(path, compact.Bytes(), 0o644)
	if err := openErr(t, cfg); err != nil {
		t.Fatalf("reformatted genesis.json: %v", err)
	}
	os.Remove(path)
	if err := openErr(t, cfg); err != nil {
		t.Fatalf("deleted genesis.json: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal("genesis.json was not written again")
	}
}

// F2 and F1: an emptied or truncated chain.db is refused with a hint.
func TestDamagedChainRefused(t *testing.T) {
	cfg := newHome(t)
	db := filepath.Join(cfg.Home, ChainFile)
	fi, _ := os.Stat(db)
	os.Truncate(db, fi.Size()/2)
	err := openErr(t, cfg)
	if !errors.Is(err, store.ErrTruncated) || !strings.Contains(err.Error(), "posd check") {
		t.Fatalf("truncated chain.db: %v", err)
	}
	os.Truncate(db, 0)
	err = openErr(t, cfg)
	if !errors.Is(err, store.ErrEmpty) || !strings.Contains(err.Error(), "restore") {
		t.Fatalf("empty chain.db: %v", err)
	}
	if fi, _ := os.Stat(db); fi.Size() != 0 {
		t.Fatal("the refused start wrote into chain.db")
	}
}

// F5: loose permissions on home, key and token are warned about.
func TestLoosePermissionsWarned(t *testing.T) {
	cfg := newHome(t)
	if p := PermissionProblems(cfg.Home, ""); len(p) != 0 {
		t.Fatalf("a fresh home has problems: %v", p)
	}
	os.Chmod(cfg.Home, 0o755)
	os.Chmod(filepath.Join(cfg.Home, KeyFile), 0o644)
	os.Chmod(filepath.Join(cfg.Home, TokenFile), 0o644)
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	if err := openErr(t, cfg); err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"home", "node key", "admin token"} {
		if !strings.Contains(logs.String(), "loose permissions: "+what) {
			t.Errorf("no warning about the %s in\n%s", what, logs.String())
		}
	}
}

// posd check on a long chain: the chain manager prunes undo records below
// the reorg window, and the check passes the home all the same; a missing
// undo record within the window still fails it.
func TestCheckHomeLongChain(t *testing.T) {
	const height = 1000
	n := startTestNode(t, func(c *Config) {
		c.BlockInterval = time.Hour
		// The blocks are a millisecond apart: a genesis of now would put
		// the last ones ahead of the clock on a machine that imports
		// faster than a block a millisecond (future_timestamp).
		c.Genesis.Timestamp = time.Now().Add(-2 * height * time.Millisecond).UnixMilli()
	})
	if got, err := n.chain.ProcessBlocks(loadBlocks(t, n, nil, height, 0)); err != nil || got != height {
		t.Fatalf("imported %d of %d blocks: %v", got, height, err)
	}
	home := n.cfg.Home
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	results := CheckHome(home, "")
	for _, r := range results {
		if r.Status == "fail" {
			t.Fatalf("check of a healthy %d-block home: %+v", height, results)
		}
	}
	found := false
	for _, r := range results {
		found = found || r.Check == "chain" && strings.HasPrefix(r.Detail, "height 1000: 1001 blocks")
	}
	if !found {
		t.Fatalf("no chain result of height %d in %+v", height, results)
	}

	// The pruning really happened: what the check accepted was a gap.
	db, err := bolt.Open(filepath.Join(home, ChainFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := func(h uint64) []byte { return binary.BigEndian.AppendUint64(nil, h) }
	err = db.Update(func(tx *bolt.Tx) error {
		undo := tx.Bucket([]byte("undo"))
		if undo.Get(key(1)) != nil {
			t.Error("the undo record of height 1 is still stored: nothing was pruned")
		}
		return undo.Delete(key(height - 1))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var fails []string
	for _, r := range CheckHome(home, "") {
		if r.Status == "fail" {
			fails = append(fails, r.Check+": "+r.Detail)
		}
	}
	want := "chain: height 999: undo record: store: not found: no undo record at height 999"
	if len(fails) != 1 || fails[0] != want {
		t.Fatalf("check of a home missing a recent undo record: %q, want [%q]", fails, want)
	}
}

// A node that made its network, restarted without flags, joins nobody
// (it used to look for the default join URL, its own port 5001 on a
// devnet-like setup, and warn about it forever); one restarted with
// --join remembers that URL from then on.
func TestRestartedGenesisNodeJoinsNobody(t *testing.T) {
	home := t.TempDir()
	reopen := func(cfg Config) string {
		t.Helper()
		cfg.Home, cfg.NoNetwork = home, true
		n, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		return n.joinURL()
	}
	if got := reopen(Config{NewNetwork: true, Genesis: DefaultGenesisParams()}); got != "" {
		t.Fatalf("first start with --genesis joins %q", got)
	}
	if got := reopen(Config{}); got != "" {
		t.Fatalf("restart without flags joins %q, want nobody", got)
	}
	const url = "http://127.0.0.1:1"
	if got := reopen(Config{Join: url}); got != url {
		t.Fatalf("restart with --join joins %q", got)
	}
	if got := reopen(Config{}); got != url {
		t.Fatalf("restart after --join joins %q, want the remembered %q", got, url)
	}
}
