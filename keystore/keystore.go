// Package keystore manages the PEM files that hold the Ed25519 keys of the
// node (posd) and the wallet (poscli): it generates keys, writes and reads
// them as PKCS#8 PEM (optionally encrypted with a passphrase, in the format
// OpenSSL reads and writes), and keeps a directory of named keys.
//
// File formats:
//
//   - private key: PEM "PRIVATE KEY" (PKCS#8), file mode 0600;
//   - with a passphrase: PEM "ENCRYPTED PRIVATE KEY" (PKCS#8
//     EncryptedPrivateKeyInfo, PBES2 with PBKDF2-HMAC-SHA256, a random
//     16-byte salt and 1,000,000 iterations, and AES-256-CBC with a random
//     IV), which `openssl pkey -in FILE -passin pass:...` reads;
//   - public key: PEM "PUBLIC KEY" (PKIX).
//
// Reading accepts what OpenSSL writes with `openssl pkcs8 -topk8 -v2 ...`:
// PBES2 with PBKDF2 (PRF hmacWithSHA1, the default when absent, or
// hmacWithSHA224/256/384/512, at most 10,000,000 iterations) and AES-128,
// AES-192 or AES-256 in CBC mode.
//
// Every error about a file names the file and wraps one of the Err*
// sentinels, so callers can test it with errors.Is.
package keystore

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/atomicfile"
)

// Sentinel errors. Errors returned by this package wrap them with a message
// naming the file or key concerned.
var (
	// ErrExists: the key file (or named key) is already there; keys are never overwritten.
	ErrExists = errors.New("already exists")
	// ErrNotFound: there is no such key file or named key.
	ErrNotFound = errors.New("not found")
	// ErrNotAKey: the data is not a PEM private key.
	ErrNotAKey = errors.New("not a private key")
	// ErrWrongPassphrase: the passphrase does not decrypt the key.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrNotEd25519: the data is a private key of another algorithm (RSA, ECDSA, ...).
	ErrNotEd25519 = errors.New("not an Ed25519 key")
	// ErrPassphraseRequired: the key is encrypted and no passphrase was given.
	ErrPassphraseRequired = errors.New("key is encrypted and needs a passphrase")
	// ErrBadName: a key name outside [A-Za-z0-9._-]{1,64} or starting with '.'.
	ErrBadName = errors.New("bad key name")
	// ErrUnsupportedEncryption: an encrypted key uses a scheme this package
	// does not read (anything but PBES2/PBKDF2/AES-CBC, or too many iterations).
	ErrUnsupportedEncryption = errors.New("unsupported key encryption")
)

// PEM block types.
const (
	pemPrivate   = "PRIVATE KEY"
	pemEncrypted = "ENCRYPTED PRIVATE KEY"
	pemPublic    = "PUBLIC KEY"
)

// maxFileSize bounds what is read from a key file: real ones are < 1 KiB.
const maxFileSize = 64 << 10

// Key is an Ed25519 private key and the file it was loaded from or saved to.
type Key struct {
	priv ed25519.PrivateKey
	path string
}

// Generate makes a new random key, not tied to any file.
func Generate() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate Ed25519 key: %w", err)
	}
	return &Key{priv: priv}, nil
}

// FromPrivateKey wraps priv (which must be ed25519.PrivateKeySize bytes; it
// is copied) in a Key not tied to any file.
func FromPrivateKey(priv ed25519.PrivateKey) *Key {
	return &Key{priv: append(ed25519.PrivateKey(nil), priv...)}
}

// PublicKey returns the key's 32-byte public key.
func (k *Key) PublicKey() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// PrivateKey returns the private key itself; callers must not modify it.
func (k *Key) PrivateKey() ed25519.PrivateKey { return k.priv }

// Address returns the account address of the key.
func (k *Key) Address() chain.Address { return chain.AddressOf(k.PublicKey()) }

// SignTx fills tx's public_key, from and signature. Set every other field first.
func (k *Key) SignTx(tx *chain.Transaction) { tx.Sign(k.priv) }

// SignHeader fills h's forger, forger_public_key and signature.
func (k *Key) SignHeader(h *chain.Header) { h.Sign(k.priv) }

// Path returns the file the key was loaded from or saved to, "" if none.
func (k *Key) Path() string { return k.path }

// EncodePEM encodes k as PEM. With a nil or empty passphrase it is an
// unencrypted "PRIVATE KEY" (PKCS#8); otherwise an "ENCRYPTED PRIVATE KEY"
// (PBES2: PBKDF2-HMAC-SHA256, random 16-byte salt, 1,000,000 iterations;
// AES-256-CBC, random IV); deriving its key takes about 140 ms on one
// current x86-64 core, and so does every decryption.
func EncodePEM(k *Key, passphrase []byte) ([]byte, error) {
	if k == nil || len(k.priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("encode key: %w (no Ed25519 private key)", ErrNotAKey)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	defer clear(der)
	if len(passphrase) == 0 {
		return pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: der}), nil
	}
	enc, err := encryptPKCS8(der, passphrase, defaultPBE())
	if err != nil {
		return nil, fmt.Errorf("encrypt key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemEncrypted, Bytes: enc}), nil
}

// DecodePEM reads a private key from PEM data: the first "PRIVATE KEY" or
// "ENCRYPTED PRIVATE KEY" block in it. The passphrase is needed only for an
// encrypted key and ignored otherwise. Errors wrap ErrNotAKey,
// ErrNotEd25519, ErrPassphraseRequired, ErrWrongPassphrase or
// ErrUnsupportedEncryption; they do not name a file (Load's do).
func DecodePEM(data []byte, passphrase []byte) (*Key, error) {
	block, err := findKeyBlock(data)
	if err != nil {
		return nil, err
	}
	return decodeBlock(block, passphrase)
}

// PublicKeyPEM encodes pub as a PEM "PUBLIC KEY" (PKIX).
func PublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key of %d bytes: %w", len(pub), ErrNotEd25519)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der}), nil
}

// parsePublicPEM reads an Ed25519 "PUBLIC KEY" PEM.
func parsePublicPEM(data []byte) (ed25519.PublicKey, error) {
	for rest := data; ; {
		b, r := pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("%w (no PUBLIC KEY PEM block)", ErrNotAKey)
		}
		rest = r
		if b.Type != pemPublic {
			continue
		}
		pk, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w (malformed public key)", ErrNotAKey)
		}
		pub, ok := pk.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w (public key is %T)", ErrNotEd25519, pk)
		}
		return pub, nil
	}
}

// findKeyBlock returns the first private key block of data, or an error
// saying what the data holds instead.
func findKeyBlock(data []byte) (*pem.Block, error) {
	first := ""
	for rest := data; ; {
		b, r := pem.Decode(rest)
		if b == nil {
			break
		}
		rest = r
		if b.Type == pemPrivate || b.Type == pemEncrypted {
			return b, nil
		}
		if first == "" {
			first = b.Type
		}
	}
	switch first {
	case "":
		return nil, fmt.Errorf("%w (no PEM data)", ErrNotAKey)
	case pemPublic:
		return nil, fmt.Errorf("%w (it is a public key)", ErrNotAKey)
	case "RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY":
		return nil, fmt.Errorf("%w (found a %s; keys here are Ed25519 PKCS#8)", ErrNotEd25519, first)
	case "OPENSSH PRIVATE KEY":
		return nil, fmt.Errorf("%w (OpenSSH key format is not supported; use PKCS#8 PEM)", ErrNotAKey)
	default:
		return nil, fmt.Errorf("%w (found a %q PEM block)", ErrNotAKey, first)
	}
}

// decodeBlock decrypts (if needed) and parses a private key block.
func decodeBlock(b *pem.Block, passphrase []byte) (*Key, error) {
	if b.Type != pemEncrypted {
		priv, err := parsePKCS8(b.Bytes)
		if err != nil {
			return nil, err
		}
		return &Key{priv: priv}, nil
	}
	if len(passphrase) == 0 {
		return nil, ErrPassphraseRequired
	}
	der, err := decryptPKCS8(b.Bytes, passphrase)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	priv, err := parsePKCS8(der)
	if errors.Is(err, ErrNotAKey) {
		// The padding happened to check out but the plaintext is garbage.
		return nil, ErrWrongPassphrase
	}
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv}, nil
}

// Save writes k to path (mode 0600, parent directories created with mode
// 0700), encrypted if passphrase is not empty. It never overwrites: if path
// exists it returns an error wrapping ErrExists. The file appears
// atomically, complete or not at all. On success k.Path() becomes path.
func Save(path string, k *Key, passphrase []byte) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s: %w", path, ErrExists)
	}
	data, err := EncodePEM(k, passphrase)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := writeNew(path, data, 0o600); err != nil {
		return err
	}
	k.path = path
	return nil
}

// Load reads the key in path; passphrase is needed only if it is encrypted.
// Errors name the file and wrap ErrNotFound, ErrNotAKey, ErrNotEd25519,
// ErrPassphraseRequired, ErrWrongPassphrase or ErrUnsupportedEncryption
// (or are the operating system's, for unreadable files).
func Load(path string, passphrase []byte) (*Key, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	k, err := DecodePEM(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	k.path = path
	return k, nil
}

// LoadOrGenerate loads the unencrypted key in path (the node key) or, if
// there is no file, generates one and saves it unencrypted; created reports
// which. An encrypted file is an error wrapping ErrPassphraseRequired.
func LoadOrGenerate(path string) (k *Key, created bool, err error) {
	k, err = Load(path, nil)
	if !errors.Is(err, ErrNotFound) {
		return k, false, err
	}
	if k, err = Generate(); err != nil {
		return nil, false, err
	}
	err = Save(path, k, nil)
	if errors.Is(err, ErrExists) { // someone else just made it
		k, err = Load(path, nil)
		return k, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// IsEncrypted reports whether the key file in path is passphrase-encrypted.
func IsEncrypted(path string) (bool, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return false, err
	}
	b, err := findKeyBlock(data)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return b.Type == pemEncrypted, nil
}

// readKeyFile reads at most maxFileSize bytes of path.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: %w (file is larger than %d bytes)", path, ErrNotAKey, maxFileSize)
	}
	return data, nil
}

// writeNew creates path atomically, never replacing an existing file (an
// existing one gives ErrExists).
func writeNew(path string, data []byte, perm fs.FileMode) error {
	err := atomicfile.Create(path, data, perm)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s: %w", path, ErrExists)
	}
	return err
}
