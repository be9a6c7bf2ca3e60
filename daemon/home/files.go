package home

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/internal/atomicfile"
)

// More files in a node's home, for the tools around the node.
const (
	// APIURLFile holds the URL the node's API listens on, written at each
	// start, so `poscli node ... --node-home DIR` talks to that node and
	// not to the default one.
	APIURLFile = "api.url"
	// SettingsFile holds the forging settings last changed at runtime
	// (PUT /v1/config), which `posd start` restores.
	SettingsFile = "settings.json"
)

// WriteAPIURL records the API's URL in home.
func WriteAPIURL(home, url string, log *slog.Logger) {
	path := filepath.Join(home, APIURLFile)
	if err := atomicfile.Replace(path, []byte(url+"\n"), 0o644); err != nil {
		log.Warn("could not record the API URL", "path", path, "err", err)
	}
}

// ReadAPIURL is the URL the node of home last listened on.
func ReadAPIURL(home string) (string, error) {
	data, err := os.ReadFile(filepath.Join(home, APIURLFile))
	if err != nil {
		return "", err
	}
	url := strings.TrimSpace(string(data))
	if url == "" {
		return "", fmt.Errorf("%s is empty", filepath.Join(home, APIURLFile))
	}
	return url, nil
}

// SaveSettings records the forging settings c in home after a runtime change.
func SaveSettings(home string, c rpc.Config, log *slog.Logger) {
	path := filepath.Join(home, SettingsFile)
	data, _ := json.MarshalIndent(c, "", "  ")
	if err := atomicfile.Replace(path, append(data, '\n'), 0o600); err != nil {
		log.Warn("could not save the forging settings; they will be lost at restart", "path", path, "err", err)
	}
}

// ReadSettings returns the settings saved in home; ok is false when none were.
func ReadSettings(home string) (c rpc.Config, ok bool, err error) {
	path := filepath.Join(home, SettingsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, false, fmt.Errorf("%s: %w (delete it to start from the flags' settings)", path, err)
	}
	return c, true, nil
}
