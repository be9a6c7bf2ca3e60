// Package home owns a node's home directory: the names of its files, making
// it, the admin token, the API URL and runtime settings kept there, and the
// checks that refuse a home whose parts disagree (key, chain database,
// genesis.json, permissions), at start and for `posd check`.
package home

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Files in a node's home directory.
const (
	KeyFile     = "node_key.pem"
	GenesisFile = "genesis.json"
	ChainFile   = "chain.db"
	TokenFile   = "api.token"
)

// Ensure creates the home directory, private to its owner.
func Ensure(home string) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("create home %s: %w", home, err)
	}
	return nil
}

// LoadOrCreateToken returns the admin token in home/api.token, creating a
// random one (0600) on first start.
func LoadOrCreateToken(home string) (string, error) {
	path := filepath.Join(home, TokenFile)
	data, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(data))
		if tok == "" {
			return "", fmt.Errorf("%s is empty: delete it to have a new token made", path)
		}
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return tok, nil
}
