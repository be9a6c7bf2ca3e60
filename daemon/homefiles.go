package daemon

import (
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/home"
)

// The home directory's files and checks live in daemon/home; these are
// the names posd's commands use, so they keep talking to daemon alone.

// Files in a node's home directory (daemon/home).
const (
	KeyFile      = home.KeyFile
	GenesisFile  = home.GenesisFile
	ChainFile    = home.ChainFile
	TokenFile    = home.TokenFile
	APIURLFile   = home.APIURLFile
	SettingsFile = home.SettingsFile
)

// PassphraseEnv is the environment variable a node reads its key's
// passphrase from (home.PassphraseEnv).
const PassphraseEnv = home.PassphraseEnv

// ErrKeyMissing: the home holds a chain but its node key is gone.
var ErrKeyMissing = home.ErrKeyMissing

// CheckResult is one finding of CheckHome.
type CheckResult = home.CheckResult

// CheckHome verifies a node's home on demand (posd check; home.Check).
func CheckHome(dir, keyFile string) []CheckResult { return home.Check(dir, keyFile) }

// PermissionProblems lists the files of dir that others than its owner may
// read or change (home.PermissionProblems).
func PermissionProblems(dir, keyFile string) []string { return home.PermissionProblems(dir, keyFile) }

// ReadAPIURL is the URL the node of dir last listened on.
func ReadAPIURL(dir string) (string, error) { return home.ReadAPIURL(dir) }

// ReadSettings returns the settings saved in dir; ok is false when none were.
func ReadSettings(dir string) (c rpc.Config, ok bool, err error) { return home.ReadSettings(dir) }
