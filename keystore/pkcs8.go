package keystore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"hash"
)

// defaultIterations is the PBKDF2 iteration count of keys this package
// encrypts: about 140 ms to derive on the development machine (x86-64, Go
// 1.26), above OWASP's 2023 floor of 600,000 for PBKDF2-HMAC-SHA256.
const defaultIterations = 1_000_000

// maxIterations bounds the iteration count accepted from a file, so that a
// hostile file cannot make decryption run for minutes.
const maxIterations = 10_000_000

// iterations is the count used when encrypting. Tests lower it to stay fast.
var iterations = defaultIterations

var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidEd25519    = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// prfs maps the PBKDF2 PRFs this package reads to their hashes.
var prfs = []struct {
	oid  asn1.ObjectIdentifier
	hash func() hash.Hash
}{
	{oidHMACSHA1, sha1.New},
	{oidHMACSHA224, sha256.New224},
	{oidHMACSHA256, sha256.New},
	{oidHMACSHA384, sha512.New384},
	{oidHMACSHA512, sha512.New},
}

// ciphers maps the AES-CBC encryption schemes to their key lengths.
var ciphers = []struct {
	oid    asn1.ObjectIdentifier
	keyLen int
}{
	{oidAES128CBC, 16},
	{oidAES192CBC, 24},
	{oidAES256CBC, 32},
}

// algorithmNames names the PKCS#8 key algorithms a user may plausibly feed us.
var algorithmNames = []struct {
	oid  asn1.ObjectIdentifier
	name string
}{
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}, "RSA"},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}, "RSA-PSS"},
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}, "ECDSA"},
	{asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}, "DSA"},
	{asn1.ObjectIdentifier{1, 3, 101, 110}, "X25519"},
	{asn1.ObjectIdentifier{1, 3, 101, 111}, "X448"},
	{asn1.ObjectIdentifier{1, 3, 101, 113}, "Ed448"},
}

// encryptedPrivateKeyInfo is PKCS#8's EncryptedPrivateKeyInfo (RFC 5208).
type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

// pbes2Params is PBES2-params (RFC 8018, A.4).
type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

// pbkdf2Params is PBKDF2-params (RFC 8018, A.2), with the salt's
// "specified" choice only.
type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                      `asn1:"optional"`
	PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
}

// privateKeyInfo is the part of PKCS#8's PrivateKeyInfo needed to name the
// key's algorithm; later optional fields are ignored.
type privateKeyInfo struct {
	Version    int
	Algorithm  pkix.AlgorithmIdentifier
	PrivateKey []byte
}

// pbeConfig says how to encrypt. prf nil leaves the PRF out (hmacWithSHA1).
type pbeConfig struct {
	iterations    int
	prf           asn1.ObjectIdentifier
	cipher        asn1.ObjectIdentifier
	withKeyLength bool
}

func defaultPBE() pbeConfig {
	return pbeConfig{iterations: iterations, prf: oidHMACSHA256, cipher: oidAES256CBC}
}

// encryptPKCS8 wraps the PKCS#8 DER der in an EncryptedPrivateKeyInfo.
func encryptPKCS8(der, passphrase []byte, c pbeConfig) ([]byte, error) {
	h := sha1.New
	if c.prf != nil {
		h = lookupPRF(c.prf)
		if h == nil {
			return nil, fmt.Errorf("unknown PRF %v", c.prf)
		}
	}
	keyLen := lookupCipher(c.cipher)
	if keyLen == 0 {
		return nil, fmt.Errorf("unknown cipher %v", c.cipher)
	}
	salt := make([]byte, 16)
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	key, err := pbkdf2.Key(h, string(passphrase), salt, c.iterations, keyLen)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(der)%aes.BlockSize
	buf := make([]byte, len(der)+pad)
	copy(buf, der)
	for i := len(der); i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)

	kdf := pbkdf2Params{Salt: salt, IterationCount: c.iterations}
	if c.withKeyLength {
		kdf.KeyLength = keyLen
	}
	if c.prf != nil {
		kdf.PRF = pkix.AlgorithmIdentifier{Algorithm: c.prf, Parameters: asn1.NullRawValue}
	}
	kdfDER, err := asn1.Marshal(kdf)
	if err != nil {
		return nil, err
	}
	ivDER, err := asn1.Marshal(iv)
	if err != nil {
		return nil, err
	}
	paramsDER, err := asn1.Marshal(pbes2Params{
		KeyDerivationFunc: pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdfDER}},
		EncryptionScheme:  pkix.AlgorithmIdentifier{Algorithm: c.cipher, Parameters: asn1.RawValue{FullBytes: ivDER}},
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm:     pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: paramsDER}},
		EncryptedData: buf,
	})
}

// decryptPKCS8 returns the PKCS#8 DER inside an EncryptedPrivateKeyInfo.
// A padding error means a wrong passphrase.
func decryptPKCS8(data, passphrase []byte) ([]byte, error) {
	malformed := func(what string) error {
		return fmt.Errorf("%w (malformed encrypted key: %s)", ErrNotAKey, what)
	}
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(data, &info); err != nil || len(rest) != 0 {
		return nil, malformed("bad EncryptedPrivateKeyInfo")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("%w (scheme %v; only PBES2 is read: re-encrypt with `openssl pkcs8 -topk8 -v2 aes-256-cbc`)",
			ErrUnsupportedEncryption, info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if rest, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil || len(rest) != 0 {
		return nil, malformed("bad PBES2 parameters")
	}
	if !params.KeyDerivationFunc.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("%w (key derivation %v; only PBKDF2 is read)", ErrUnsupportedEncryption, params.KeyDerivationFunc.Algorithm)
	}
	var kdf pbkdf2Params
	if rest, err := asn1.Unmarshal(params.KeyDerivationFunc.Parameters.FullBytes, &kdf); err != nil || len(rest) != 0 {
		return nil, malformed("bad PBKDF2 parameters")
	}
	h := sha1.New // the default PRF when absent
	if len(kdf.PRF.Algorithm) > 0 {
		if h = lookupPRF(kdf.PRF.Algorithm); h == nil {
			return nil, fmt.Errorf("%w (PBKDF2 PRF %v)", ErrUnsupportedEncryption, kdf.PRF.Algorithm)
		}
	}
	if kdf.IterationCount < 1 || kdf.IterationCount > maxIterations {
		return nil, fmt.Errorf("%w (PBKDF2 iteration count %d is outside 1..%d)", ErrUnsupportedEncryption, kdf.IterationCount, maxIterations)
	}
	if len(kdf.Salt) == 0 || len(kdf.Salt) > 1024 {
		return nil, malformed(fmt.Sprintf("salt of %d bytes", len(kdf.Salt)))
	}
	keyLen := lookupCipher(params.EncryptionScheme.Algorithm)
	if keyLen == 0 {
		return nil, fmt.Errorf("%w (cipher %v; only AES-CBC is read)", ErrUnsupportedEncryption, params.EncryptionScheme.Algorithm)
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != keyLen {
		return nil, malformed(fmt.Sprintf("key length %d for a %d-byte cipher key", kdf.KeyLength, keyLen))
	}
	var iv []byte
	if rest, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil || len(rest) != 0 || len(iv) != aes.BlockSize {
		return nil, malformed("bad IV")
	}
	ct := info.EncryptedData
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, malformed("ciphertext is not whole AES blocks")
	}

	key, err := pbkdf2.Key(h, string(passphrase), kdf.Salt, kdf.IterationCount, keyLen)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrUnsupportedEncryption, err)
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > aes.BlockSize {
		clear(pt)
		return nil, ErrWrongPassphrase
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			clear(pt)
			return nil, ErrWrongPassphrase
		}
	}
	return pt[:len(pt)-pad], nil
}

// parsePKCS8 parses an unencrypted PKCS#8 Ed25519 private key.
func parsePKCS8(der []byte) (ed25519.PrivateKey, error) {
	var info privateKeyInfo
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return nil, fmt.Errorf("%w (malformed PKCS#8 data)", ErrNotAKey)
	}
	if !info.Algorithm.Algorithm.Equal(oidEd25519) {
		return nil, fmt.Errorf("%w (its algorithm is %s)", ErrNotEd25519, algorithmName(info.Algorithm.Algorithm))
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w (malformed PKCS#8 Ed25519 key)", ErrNotAKey)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w (it is a %T)", ErrNotEd25519, key)
	}
	return priv, nil
}

func lookupPRF(oid asn1.ObjectIdentifier) func() hash.Hash {
	for _, p := range prfs {
		if p.oid.Equal(oid) {
			return p.hash
		}
	}
	return nil
}

func lookupCipher(oid asn1.ObjectIdentifier) int {
	for _, c := range ciphers {
		if c.oid.Equal(oid) {
			return c.keyLen
		}
	}
	return 0
}

func algorithmName(oid asn1.ObjectIdentifier) string {
	for _, a := range algorithmNames {
		if a.oid.Equal(oid) {
			return a.name
		}
	}
	return "OID " + oid.String()
}
