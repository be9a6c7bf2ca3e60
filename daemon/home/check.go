package home

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/internal/atomicfile"
	"github.com/poslab/posd/keystore"
)

// The checks of a node's home at start (and of `posd check`): a home whose
// parts disagree stops the node with a message that says what to do,
// rather than letting it quietly become another node.

// PassphraseEnv is the environment variable a node reads its key's
// passphrase from, for --key and the default <home>/node_key.pem alike.
const PassphraseEnv = "POSD_KEY_PASSPHRASE"

// ErrKeyMissing: the home holds a chain but its node key is gone.
var ErrKeyMissing = errors.New("node key missing")

// chainPresent reports whether home holds a chain database with content.
func chainPresent(home string) bool {
	fi, err := os.Stat(filepath.Join(home, ChainFile))
	return err == nil && fi.Size() > 0
}

// KeySpec says where a node's key is.
type KeySpec struct {
	Home    string
	KeyFile string // --key; default <home>/node_key.pem
	NewKey  bool   // --new-key: make a key although the home holds a chain
}

// LoadNodeKey loads the node key: --key FILE, or <home>/node_key.pem made
// on first start. POSD_KEY_PASSPHRASE decrypts either (and encrypts a key
// made here). A default key that vanished from a home with a chain is
// refused unless cfg.NewKey: a new key silently stops the node being the
// forger it was.
func LoadNodeKey(cfg KeySpec) (*keystore.Key, error) { return loadKey(cfg, true) }

// loadKey is LoadNodeKey; without create a missing key is only an error.
func loadKey(cfg KeySpec, create bool) (*keystore.Key, error) {
	pass := []byte(os.Getenv(PassphraseEnv))
	if cfg.KeyFile != "" {
		k, err := keystore.Load(cfg.KeyFile, pass)
		return k, keyHint(err)
	}
	path := filepath.Join(cfg.Home, KeyFile)
	k, err := keystore.Load(path, pass)
	if !errors.Is(err, keystore.ErrNotFound) {
		return k, keyHint(err)
	}
	if !create {
		return nil, fmt.Errorf("%w: %s does not exist (the node makes it on first start)", ErrKeyMissing, path)
	}
	if chainPresent(cfg.Home) && !cfg.NewKey {
		return nil, fmt.Errorf("%w: %s is gone but %s holds a chain; restore the key file, or start with --new-key to make a new one (the node will no longer forge with its old stake)",
			ErrKeyMissing, path, filepath.Join(cfg.Home, ChainFile))
	}
	if k, err = keystore.Generate(); err != nil {
		return nil, err
	}
	if err := keystore.Save(path, k, pass); err != nil {
		if errors.Is(err, keystore.ErrExists) { // someone else just made it
			k, err := keystore.Load(path, pass)
			return k, keyHint(err)
		}
		return nil, err
	}
	return keystore.Load(path, pass)
}

// keyHint adds the passphrase variable to a missing-passphrase error.
func keyHint(err error) error {
	if errors.Is(err, keystore.ErrPassphraseRequired) {
		return fmt.Errorf("%w (set %s)", err, PassphraseEnv)
	}
	return err
}

// OpenStore opens the chain database with a hint for each kind of damage.
func OpenStore(home string) (*store.Store, error) {
	path := filepath.Join(home, ChainFile)
	st, err := store.Open(path)
	if err == nil {
		return st, nil
	}
	switch {
	case errors.Is(err, store.ErrEmpty):
		return nil, fmt.Errorf("%w; this home had a chain and its database was emptied: restore %s from a backup, or move it away to sync the chain again from peers (posd check --home %s tells more)", err, path, home)
	case store.IsDamaged(err):
		return nil, fmt.Errorf("%w; restore %s from a backup, or move it away to sync the chain again from peers (posd check --home %s tells more)", err, path, home)
	}
	return nil, err
}

// CheckGenesisFiles compares home/genesis.json (and genesisFile, the
// --genesis-file, if given) with the genesis of the stored chain g. An
// edited file is refused: the node would otherwise run one network while
// its home claims another. A missing home/genesis.json is written again
// from the chain.
func CheckGenesisFiles(home, genesisFile string, g *chain.Genesis) error {
	path := filepath.Join(home, GenesisFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		js, _ := json.MarshalIndent(g, "", "  ")
		return atomicfile.Replace(path, append(js, '\n'), 0o644)
	}
	if err != nil {
		return err
	}
	if err := sameGenesis(path, data, g); err != nil {
		return fmt.Errorf("%w; restore it (delete it and posd writes it again from %s)", err, ChainFile)
	}
	if genesisFile != "" {
		data, err := os.ReadFile(genesisFile)
		if err != nil {
			return err
		}
		if err := sameGenesis(genesisFile, data, g); err != nil {
			return fmt.Errorf("%w; --genesis-file only applies to a home without a chain", err)
		}
	}
	return nil
}

func sameGenesis(path string, data []byte, g *chain.Genesis) error {
	fg, err := chain.ParseGenesis(data)
	if err != nil {
		return fmt.Errorf("%s does not parse (%v) but the chain in this home has genesis %s", path, err, g.Hash())
	}
	if fg.Hash() != g.Hash() {
		return fmt.Errorf("%s (genesis %s, chain id %q) differs from the genesis of the chain in this home (%s, chain id %q)",
			path, fg.Hash(), fg.ChainID, g.Hash(), g.ChainID)
	}
	return nil
}

// PermissionProblems lists the files of home that others than its owner
// may read or change: the home itself, the node key (or keyFile) and the
// admin token. Each is one line saying what to run.
func PermissionProblems(home, keyFile string) []string {
	if keyFile == "" {
		keyFile = filepath.Join(home, KeyFile)
	}
	var out []string
	check := func(path, what string, want fs.FileMode) {
		fi, err := os.Stat(path)
		if err != nil {
			return
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			out = append(out, fmt.Sprintf("%s %s has mode %04o: others may read it (chmod %04o %s)", what, path, perm, want, path))
		}
	}
	check(home, "home", 0o700)
	check(keyFile, "node key", 0o600)
	check(filepath.Join(home, TokenFile), "admin token", 0o600)
	return out
}

// WarnPermissions logs each of PermissionProblems.
func WarnPermissions(log *slog.Logger, home, keyFile string) {
	for _, p := range PermissionProblems(home, keyFile) {
		log.Warn("loose permissions: " + p)
	}
}

// CheckResult is one finding of Check.
type CheckResult struct {
	Check  string `json:"check"`  // home, permissions, key, chain, genesis
	Status string `json:"status"` // ok, warn, fail
	Detail string `json:"detail"`
}

// Check verifies a node's home on demand (posd check) without
// changing it: permissions, the node key (POSD_KEY_PASSPHRASE for an
// encrypted one), the chain database (file, bbolt's consistency check,
// the chain from genesis to head and its state replayed) and genesis.json
// against the stored genesis. A running node holds the database: stop it
// first.
func Check(home, keyFile string) []CheckResult {
	var out []CheckResult
	add := func(check, status, format string, args ...any) {
		out = append(out, CheckResult{check, status, fmt.Sprintf(format, args...)})
	}
	if fi, err := os.Stat(home); err != nil || !fi.IsDir() {
		add("home", "fail", "%s is not a directory: %v", home, err)
		return out
	}
	add("home", "ok", "%s", home)
	if p := PermissionProblems(home, keyFile); len(p) > 0 {
		for _, line := range p {
			add("permissions", "warn", "%s", line)
		}
	} else {
		add("permissions", "ok", "home, key and token are private to their owner")
	}

	k, err := loadKey(KeySpec{Home: home, KeyFile: keyFile}, false)
	switch {
	case err != nil:
		add("key", "fail", "%v", err)
	default:
		add("key", "ok", "%s: address %s", k.Path(), k.Address())
	}

	path := filepath.Join(home, ChainFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		add("chain", "ok", "no %s yet: the node has not started in this home", ChainFile)
		return out
	}
	st, err := store.OpenReadOnly(path)
	if err != nil {
		add("chain", "fail", "%v", err)
		return out
	}
	defer st.Close()
	r, err := st.Verify(chainmgr.MaxReorgDepth)
	switch {
	case err != nil:
		add("chain", "fail", "%v", err)
	case !r.OK():
		for _, p := range r.Problems {
			add("chain", "fail", "%s", p)
		}
	default:
		add("chain", "ok", "height %d: %d blocks link from genesis, state of %d accounts and %d slashings matches a replay", r.Height, r.Blocks, r.Accounts, r.Slashings)
	}
	g, err := st.Genesis()
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			add("genesis", "fail", "stored genesis: %v", err)
		}
		return out
	}
	gpath := filepath.Join(home, GenesisFile)
	data, err := os.ReadFile(gpath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		add("genesis", "warn", "%s is missing; the node writes it again from the chain at start", gpath)
	case err != nil:
		add("genesis", "fail", "%v", err)
	default:
		if err := sameGenesis(gpath, data, g); err != nil {
			add("genesis", "fail", "%v", err)
		} else {
			add("genesis", "ok", "%s is the chain's genesis %s", gpath, g.Hash())
		}
	}
	return out
}
