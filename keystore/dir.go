package keystore

import (
	"bytes"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/atomicfile"
)

// Dir is a directory of named keys: key NAME lives in <dir>/NAME.pem, with
// its public key in <dir>/NAME.pub so that listing needs no passphrase.
// Names are 1 to 64 of the characters A-Z a-z 0-9 . _ - and do not start
// with '.'. The directory is created (mode 0700) on the first write.
type Dir struct{ Path string }

// Info describes a key of a Dir. Address is "" when it is not known: an
// encrypted key without its .pub file, or a file that is not a readable key.
type Info struct {
	Name      string        `json:"name"`
	Address   chain.Address `json:"address"`
	Path      string        `json:"path"`
	Encrypted bool          `json:"encrypted"`
}

const maxNameLen = 64

// checkName returns an error wrapping ErrBadName unless name is valid.
func checkName(name string) error {
	ok := len(name) >= 1 && len(name) <= maxNameLen && name[0] != '.'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%w %q: use 1 to %d of A-Z a-z 0-9 . _ - not starting with '.'", ErrBadName, name, maxNameLen)
	}
	return nil
}

func (d Dir) file(name string) string    { return filepath.Join(d.Path, name+".pem") }
func (d Dir) pubFile(name string) string { return filepath.Join(d.Path, name+".pub") }

func (d Dir) notFound(name string) error {
	dir := d.Path
	if dir == "" {
		dir = "."
	}
	return fmt.Errorf("key %q %w in %s; create it with `poscli keygen %s`", name, ErrNotFound, dir, name)
}

func (d Dir) exists(name string) error {
	return fmt.Errorf("key %q %w (%s)", name, ErrExists, d.file(name))
}

// Create generates a key named name, saved encrypted if passphrase is not
// empty, along with its .pub file. It fails with ErrExists if name is taken.
func (d Dir) Create(name string, passphrase []byte) (*Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(d.file(name)); err == nil {
		return nil, d.exists(name)
	}
	k, err := Generate()
	if err != nil {
		return nil, err
	}
	if err := Save(d.file(name), k, passphrase); err != nil {
		if errors.Is(err, ErrExists) {
			return nil, d.exists(name)
		}
		return nil, err
	}
	if err := d.writePub(name, k.PublicKey()); err != nil {
		os.Remove(d.file(name))
		return nil, err
	}
	return k, nil
}

// Load reads the key named name. A missing key is an error wrapping
// ErrNotFound that says how to create it. If the key's .pub file is missing
// or wrong, Load rewrites it.
func (d Dir) Load(name string, passphrase []byte) (*Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	k, err := Load(d.file(name), passphrase)
	if errors.Is(err, ErrNotFound) {
		return nil, d.notFound(name)
	}
	if err != nil {
		return nil, err
	}
	if pub, err := d.readPub(name); err != nil || !pub.Equal(k.PublicKey()) {
		d.writePub(name, k.PublicKey()) // best effort: it only serves List
	}
	return k, nil
}

// List describes every key of the directory, sorted by name. A directory
// that does not exist has no keys. Files that are not readable keys are
// listed with an empty Address.
func (d Dir) List() ([]Info, error) {
	dir := d.Path
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".pem")
		if !ok || e.IsDir() || checkName(name) != nil {
			continue
		}
		info, err := d.info(name)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			info = Info{Name: name, Path: d.file(name)}
			info.Encrypted, _ = IsEncrypted(info.Path)
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Info describes the key named name without needing its passphrase.
func (d Dir) Info(name string) (Info, error) {
	if err := checkName(name); err != nil {
		return Info{}, err
	}
	return d.info(name)
}

func (d Dir) info(name string) (Info, error) {
	path := d.file(name)
	data, err := readKeyFile(path)
	if errors.Is(err, ErrNotFound) {
		return Info{}, d.notFound(name)
	}
	if err != nil {
		return Info{}, err
	}
	block, err := findKeyBlock(data)
	if err != nil {
		return Info{}, fmt.Errorf("%s: %w", path, err)
	}
	info := Info{Name: name, Path: path, Encrypted: block.Type == pemEncrypted}
	if info.Encrypted {
		if pub, err := d.readPub(name); err == nil {
			info.Address = chain.AddressOf(pub)
		}
		return info, nil
	}
	k, err := decodeBlock(block, nil)
	if err != nil {
		return Info{}, fmt.Errorf("%s: %w", path, err)
	}
	info.Address = k.Address()
	return info, nil
}

// Import copies the key in file into the directory as name, as it is: an
// encrypted key stays encrypted under its own passphrase and parameters, an
// unencrypted one stays unencrypted. passphrase is used only to check that
// an encrypted key reads (and to learn its address for the .pub file).
func (d Dir) Import(name, file string, passphrase []byte) (Info, error) {
	if err := checkName(name); err != nil {
		return Info{}, err
	}
	dst := d.file(name)
	if _, err := os.Lstat(dst); err == nil {
		return Info{}, d.exists(name)
	}
	data, err := readKeyFile(file)
	if err != nil {
		return Info{}, err
	}
	block, err := findKeyBlock(data)
	if err != nil {
		return Info{}, fmt.Errorf("%s: %w", file, err)
	}
	k, err := decodeBlock(block, passphrase)
	if err != nil {
		return Info{}, fmt.Errorf("%s: %w", file, err)
	}
	// Keep the key block alone: no surrounding text, no PEM headers.
	out := pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: block.Bytes})
	if err := writeNew(dst, out, 0o600); err != nil {
		if errors.Is(err, ErrExists) {
			return Info{}, d.exists(name)
		}
		return Info{}, err
	}
	if err := d.writePub(name, k.PublicKey()); err != nil {
		os.Remove(dst)
		return Info{}, err
	}
	return Info{Name: name, Address: k.Address(), Path: dst, Encrypted: block.Type == pemEncrypted}, nil
}

// Export returns the PEM bytes of the key named name as stored (still
// encrypted if it is).
func (d Dir) Export(name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	data, err := readKeyFile(d.file(name))
	if errors.Is(err, ErrNotFound) {
		return nil, d.notFound(name)
	}
	return data, err
}

// Resolve returns the key file meant by nameOrPath: nameOrPath itself if it
// contains a path separator, or ends in ".pem" and exists; otherwise the
// file of the key so named in the directory (<dir>/<name>.pem), whether or
// not it exists. Pass the result to Load.
func (d Dir) Resolve(nameOrPath string) string {
	if strings.ContainsRune(nameOrPath, '/') || strings.ContainsRune(nameOrPath, filepath.Separator) {
		return nameOrPath
	}
	if strings.HasSuffix(nameOrPath, ".pem") {
		if st, err := os.Stat(nameOrPath); err == nil && !st.IsDir() {
			return nameOrPath
		}
	}
	return d.file(nameOrPath)
}

func (d Dir) readPub(name string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(d.pubFile(name))
	if err != nil {
		return nil, err
	}
	return parsePublicPEM(data)
}

func (d Dir) writePub(name string, pub ed25519.PublicKey) error {
	data, err := PublicKeyPEM(pub)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(d.pubFile(name)); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return atomicfile.Replace(d.pubFile(name), data, 0o644)
}
