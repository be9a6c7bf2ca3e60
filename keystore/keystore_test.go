package keystore

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
)

// testIterations keeps PBKDF2 cheap in tests; TestDefaultIterations uses the real count.
const testIterations = 1000

func TestMain(m *testing.M) {
	iterations = testIterations
	os.Exit(m.Run())
}

func mustGenerate(t testing.TB) *Key {
	t.Helper()
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustEncode(t testing.TB, k *Key, pass string) []byte {
	t.Helper()
	data, err := EncodePEM(k, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkOneLine fails unless err's message is a single line containing want.
func checkOneLine(t *testing.T, err error, want string) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	if want != "" && !strings.Contains(msg, want) {
		t.Errorf("error %q does not mention %q", msg, want)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name, pass, pemType string
	}{
		{"unencrypted", "", pemPrivate},
		{"encrypted", "correct horse battery staple", pemEncrypted},
		{"encrypted unicode", "pässwörd ✓", pemEncrypted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := mustGenerate(t)
			data := mustEncode(t, k, tc.pass)
			b, _ := pem.Decode(data)
			if b == nil || b.Type != tc.pemType {
				t.Fatalf("PEM block %v, want type %q", b, tc.pemType)
			}
			got, err := DecodePEM(data, []byte(tc.pass))
			if err != nil {
				t.Fatal(err)
			}
			if !got.PrivateKey().Equal(k.PrivateKey()) || got.Address() != k.Address() {
				t.Fatal("decoded key differs")
			}
			if got.Path() != "" {
				t.Errorf("Path() = %q for a decoded key", got.Path())
			}

			path := filepath.Join(t.TempDir(), "sub", "dir", "key.pem")
			if err := Save(path, k, []byte(tc.pass)); err != nil {
				t.Fatal(err)
			}
			if k.Path() != path {
				t.Errorf("after Save, Path() = %q", k.Path())
			}
			loaded, err := Load(path, []byte(tc.pass))
			if err != nil {
				t.Fatal(err)
			}
			if !loaded.PrivateKey().Equal(k.PrivateKey()) || loaded.Path() != path {
				t.Fatal("loaded key differs")
			}
			enc, err := IsEncrypted(path)
			if err != nil || enc != (tc.pass != "") {
				t.Errorf("IsEncrypted = %v, %v", enc, err)
			}
		})
	}
}

func TestEncryptionIsRandomized(t *testing.T) {
	k := mustGenerate(t)
	a, b := mustEncode(t, k, "pw"), mustEncode(t, k, "pw")
	if bytes.Equal(a, b) {
		t.Fatal("two encryptions of one key are identical: salt or IV not random")
	}
}

func TestFromPrivateKey(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	k := FromPrivateKey(priv)
	want := chain.AddressOf(priv.Public().(ed25519.PublicKey))
	if k.Address() != want || !k.Address().Valid() {
		t.Fatalf("Address() = %q, want %q", k.Address(), want)
	}
	if !k.PublicKey().Equal(priv.Public()) {
		t.Fatal("PublicKey differs")
	}
	priv[0] ^= 1 // FromPrivateKey copies
	if k.PrivateKey()[0] == priv[0] {
		t.Fatal("FromPrivateKey aliases its argument")
	}
}

func TestSaveRefusesOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	k1, k2 := mustGenerate(t), mustGenerate(t)
	if err := Save(path, k1, nil); err != nil {
		t.Fatal(err)
	}
	for _, pass := range []string{"", "pw"} {
		err := Save(path, k2, []byte(pass))
		if !errors.Is(err, ErrExists) {
			t.Fatalf("second Save: %v, want ErrExists", err)
		}
		checkOneLine(t, err, path)
	}
	got, err := Load(path, nil)
	if err != nil || !got.PrivateKey().Equal(k1.PrivateKey()) {
		t.Fatal("the first key was replaced")
	}
	if k2.Path() != "" {
		t.Errorf("failed Save set Path to %q", k2.Path())
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(entries))
	}
}

func TestSaveConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	keys := make([]*Key, n)
	for i := range n {
		keys[i] = mustGenerate(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Save(path, keys[i], nil)
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("Saves %d and %d both succeeded", winner, i)
			}
			winner = i
		case !errors.Is(err, ErrExists):
			t.Fatalf("Save %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no Save succeeded")
	}
	got, err := Load(path, nil)
	if err != nil || !got.PrivateKey().Equal(keys[winner].PrivateKey()) {
		t.Fatalf("file does not hold the winner's key: %v", err)
	}
}

func TestFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions on Windows")
	}
	root := t.TempDir()
	path := filepath.Join(root, "new", "key.pem")
	for i, pass := range []string{"", "pw"} {
		p := path + string(rune('0'+i))
		if err := Save(p, mustGenerate(t), []byte(pass)); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
		}
	}
	st, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("created directory mode %v, want 0700", st.Mode().Perm())
	}
}

func TestWrongPassphrase(t *testing.T) {
	dir := t.TempDir()
	k := mustGenerate(t)
	path := writeFile(t, dir, "key.pem", mustEncode(t, k, "right"))
	for _, tc := range []struct {
		name string
		pass []byte
		want error
	}{
		{"wrong", []byte("wrong"), ErrWrongPassphrase},
		{"case", []byte("Right"), ErrWrongPassphrase},
		{"prefix", []byte("righ"), ErrWrongPassphrase},
		{"nil", nil, ErrPassphraseRequired},
		{"empty", []byte{}, ErrPassphraseRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(path, tc.pass)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Load: %v, want %v", err, tc.want)
			}
			checkOneLine(t, err, path)
		})
	}
	// Many wrong passphrases: the padding check lets ~1/256 through, and
	// those must still come out as ErrWrongPassphrase, never as a key.
	data := mustEncode(t, k, "right")
	for i := range 600 {
		_, err := DecodePEM(data, []byte{byte(i), byte(i >> 8), 'x'})
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("passphrase %d: %v", i, err)
		}
	}
}

func TestUnencryptedIgnoresPassphrase(t *testing.T) {
	k := mustGenerate(t)
	got, err := DecodePEM(mustEncode(t, k, ""), []byte("unused"))
	if err != nil || !got.PrivateKey().Equal(k.PrivateKey()) {
		t.Fatalf("DecodePEM: %v", err)
	}
}

func pkcs8PEM(t testing.TB, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: der})
}

func TestNotAKeyOrNotEd25519(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	ecSEC1, _ := x509.MarshalECPrivateKey(ec)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	encEC, err := encryptPKCS8(ecDER, []byte("pw"), defaultPBE())
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 300)
	rand.Read(junk)
	k := mustGenerate(t)
	pub, _ := PublicKeyPEM(k.PublicKey())
	valid := mustEncode(t, k, "")

	for _, tc := range []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrNotAKey, "no PEM data"},
		{"text", []byte("hello, I am not a key\n"), ErrNotAKey, "no PEM data"},
		{"random bytes", junk, ErrNotAKey, ""},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: junk}), ErrNotAKey, `"CERTIFICATE"`},
		{"public key", pub, ErrNotAKey, "public key"},
		{"garbage PRIVATE KEY", pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: junk}), ErrNotAKey, "malformed"},
		{"garbage ENCRYPTED PRIVATE KEY", pem.EncodeToMemory(&pem.Block{Type: pemEncrypted, Bytes: junk}), ErrNotAKey, "malformed"},
		{"truncated", valid[:len(valid)/2], ErrNotAKey, ""},
		{"ECDSA PKCS#8", pkcs8PEM(t, ec), ErrNotEd25519, "ECDSA"},
		{"X25519 PKCS#8", pkcs8PEM(t, x), ErrNotEd25519, "X25519"},
		{"ECDSA SEC1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecSEC1}), ErrNotEd25519, "EC PRIVATE KEY"},
		{"encrypted ECDSA", pem.EncodeToMemory(&pem.Block{Type: pemEncrypted, Bytes: encEC}), ErrNotEd25519, "ECDSA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "key.pem", tc.data)
			_, err := Load(path, []byte("pw"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Load: %v, want %v", err, tc.want)
			}
			checkOneLine(t, err, path)
			checkOneLine(t, err, tc.msg)
			if _, err := DecodePEM(tc.data, []byte("pw")); !errors.Is(err, tc.want) {
				t.Fatalf("DecodePEM: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.pem")
	_, err := Load(path, nil)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load: %v, want ErrNotFound", err)
	}
	checkOneLine(t, err, path)
	if _, err := IsEncrypted(path); !errors.Is(err, ErrNotFound) {
		t.Fatalf("IsEncrypted: %v, want ErrNotFound", err)
	}
}

func TestKeyAmidOtherPEM(t *testing.T) {
	// openssl and hand-made files may carry text and other blocks around the key.
	k := mustGenerate(t)
	data := append([]byte("Key for node 1\n"), pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{5, 0}})...)
	data = append(data, mustEncode(t, k, "")...)
	got, err := DecodePEM(data, nil)
	if err != nil || !got.PrivateKey().Equal(k.PrivateKey()) {
		t.Fatalf("DecodePEM: %v", err)
	}
}

func TestLoadOrGenerate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node", "node.pem")
	k1, created, err := LoadOrGenerate(path)
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	if enc, _ := IsEncrypted(path); enc {
		t.Fatal("node key saved encrypted")
	}
	k2, created, err := LoadOrGenerate(path)
	if err != nil || created {
		t.Fatalf("second call: created=%v err=%v", created, err)
	}
	if k1.Address() != k2.Address() || k2.Path() != path {
		t.Fatal("second call returned another key")
	}

	encPath := filepath.Join(t.TempDir(), "enc.pem")
	if err := Save(encPath, mustGenerate(t), []byte("pw")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrGenerate(encPath); !errors.Is(err, ErrPassphraseRequired) {
		t.Fatalf("encrypted node key: %v, want ErrPassphraseRequired", err)
	}
	bad := writeFile(t, t.TempDir(), "bad.pem", []byte("junk"))
	if _, _, err := LoadOrGenerate(bad); !errors.Is(err, ErrNotAKey) {
		t.Fatalf("junk node key: %v, want ErrNotAKey", err)
	}
	if data, _ := os.ReadFile(bad); string(data) != "junk" {
		t.Fatal("LoadOrGenerate replaced a bad file")
	}
}

func TestPublicKeyPEM(t *testing.T) {
	k := mustGenerate(t)
	data, err := PublicKeyPEM(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PUBLIC KEY" {
		t.Fatalf("block %v", b)
	}
	pub, err := parsePublicPEM(data)
	if err != nil || !pub.Equal(k.PublicKey()) {
		t.Fatalf("parsePublicPEM: %v", err)
	}
	if _, err := PublicKeyPEM(k.PublicKey()[:31]); err == nil {
		t.Fatal("PublicKeyPEM accepted a 31-byte key")
	}
}

func TestSignTx(t *testing.T) {
	k := mustGenerate(t)
	to := mustGenerate(t).Address()
	const chainID = "posd-test"
	tx := chain.Transaction{Type: chain.TxTransfer, ChainID: chainID, To: to, Amount: 1, Nonce: 1}
	k.SignTx(&tx)
	if tx.From != k.Address() || tx.PublicKey.String() != hex.EncodeToString(k.PublicKey()) {
		t.Fatalf("from %s / public_key %s not the key's", tx.From, tx.PublicKey)
	}
	if err := tx.Validate(chainID); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if err := tx.Validate("other-chain"); !errors.Is(err, chain.ErrWrongChain) {
		t.Fatalf("Validate on another chain: %v", err)
	}
	tampered := tx
	tampered.Amount = 2
	if err := tampered.Validate(chainID); !errors.Is(err, chain.ErrBadSignature) {
		t.Fatalf("tampered: %v, want bad_signature", err)
	}

	// A key that went through an encrypted file signs the same.
	path := filepath.Join(t.TempDir(), "w.pem")
	if err := Save(path, k, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	k2, err := Load(path, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	tx2 := chain.Transaction{Type: chain.TxTransfer, ChainID: chainID, To: to, Amount: 1, Nonce: 1}
	k2.SignTx(&tx2)
	if tx2.Signature != tx.Signature {
		t.Fatal("reloaded key signs differently")
	}
}

func TestSignHeader(t *testing.T) {
	k := mustGenerate(t)
	h := chain.Header{Height: 1, Timestamp: time.Now().UnixMilli()}
	k.SignHeader(&h)
	if h.Forger != k.Address() {
		t.Fatalf("forger %s, want %s", h.Forger, k.Address())
	}
	sig, err := hex.DecodeString(h.Signature)
	if err != nil || !ed25519.Verify(k.PublicKey(), h.SigningBytes(), sig) {
		t.Fatal("header signature does not verify")
	}
}

// TestPBEVariants reads files encrypted with the other parameters OpenSSL
// may write: SHA-1 PRF left out (the DEFAULT), explicit key length, AES-128/192.
func TestPBEVariants(t *testing.T) {
	k := mustGenerate(t)
	der, _ := x509.MarshalPKCS8PrivateKey(k.PrivateKey())
	for _, tc := range []struct {
		name string
		cfg  pbeConfig
	}{
		{"sha1 default prf", pbeConfig{iterations: 2048, prf: nil, cipher: oidAES256CBC}},
		{"sha1 explicit", pbeConfig{iterations: 2048, prf: oidHMACSHA1, cipher: oidAES128CBC}},
		{"sha512 aes192 keylen", pbeConfig{iterations: 10, prf: oidHMACSHA512, cipher: oidAES192CBC, withKeyLength: true}},
		{"one iteration", pbeConfig{iterations: 1, prf: oidHMACSHA256, cipher: oidAES256CBC}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := encryptPKCS8(der, []byte("pw"), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			data := pem.EncodeToMemory(&pem.Block{Type: pemEncrypted, Bytes: enc})
			got, err := DecodePEM(data, []byte("pw"))
			if err != nil || !got.PrivateKey().Equal(k.PrivateKey()) {
				t.Fatalf("DecodePEM: %v", err)
			}
			if _, err := DecodePEM(data, []byte("nope")); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("wrong passphrase: %v", err)
			}
		})
	}
}

// fakeEncrypted builds an EncryptedPrivateKeyInfo around random ciphertext,
// for tests that must fail before any key derivation.
func fakeEncrypted(t testing.TB, scheme, kdfOID, cipherOID asn1.ObjectIdentifier, iter int) []byte {
	t.Helper()
	must := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	kdf := must(asn1.Marshal(pbkdf2Params{Salt: make([]byte, 16), IterationCount: iter,
		PRF: pkix.AlgorithmIdentifier{Algorithm: oidHMACSHA256, Parameters: asn1.NullRawValue}}))
	iv := must(asn1.Marshal(make([]byte, 16)))
	params := must(asn1.Marshal(pbes2Params{
		KeyDerivationFunc: pkix.AlgorithmIdentifier{Algorithm: kdfOID, Parameters: asn1.RawValue{FullBytes: kdf}},
		EncryptionScheme:  pkix.AlgorithmIdentifier{Algorithm: cipherOID, Parameters: asn1.RawValue{FullBytes: iv}},
	}))
	der := must(asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm:     pkix.AlgorithmIdentifier{Algorithm: scheme, Parameters: asn1.RawValue{FullBytes: params}},
		EncryptedData: make([]byte, 48),
	}))
	return pem.EncodeToMemory(&pem.Block{Type: pemEncrypted, Bytes: der})
}

func TestUnsupportedEncryption(t *testing.T) {
	desCBC := asn1.ObjectIdentifier{1, 3, 14, 3, 2, 7}
	for _, tc := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"too many iterations", fakeEncrypted(t, oidPBES2, oidPBKDF2, oidAES256CBC, maxIterations+1), "iteration count"},
		{"zero iterations", fakeEncrypted(t, oidPBES2, oidPBKDF2, oidAES256CBC, 0), "iteration count"},
		{"negative iterations", fakeEncrypted(t, oidPBES2, oidPBKDF2, oidAES256CBC, -5), "iteration count"},
		{"PKCS#12 PBE", fakeEncrypted(t, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}, oidPBKDF2, oidAES256CBC, 1), "openssl pkcs8"},
		{"scrypt", fakeEncrypted(t, oidPBES2, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}, oidAES256CBC, 1), "PBKDF2"},
		{"DES", fakeEncrypted(t, oidPBES2, oidPBKDF2, desCBC, 1), "AES-CBC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := DecodePEM(tc.data, []byte("pw"))
			if !errors.Is(err, ErrUnsupportedEncryption) {
				t.Fatalf("DecodePEM: %v, want ErrUnsupportedEncryption", err)
			}
			checkOneLine(t, err, tc.msg)
			if d := time.Since(start); d > time.Second {
				t.Errorf("refusing took %v", d)
			}
		})
	}
}

// TestDefaultIterations runs the real iteration count once and reports
// how long decryption takes.
func TestDefaultIterations(t *testing.T) {
	if defaultIterations < 600_000 {
		t.Fatalf("default iteration count %d is below 600000", defaultIterations)
	}
	iterations = defaultIterations
	defer func() { iterations = testIterations }()

	k := mustGenerate(t)
	data := mustEncode(t, k, "pw")
	b, _ := pem.Decode(data)
	var info encryptedPrivateKeyInfo
	var params pbes2Params
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(b.Bytes, &info); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(params.KeyDerivationFunc.Parameters.FullBytes, &kdf); err != nil {
		t.Fatal(err)
	}
	if kdf.IterationCount != defaultIterations || len(kdf.Salt) != 16 ||
		!kdf.PRF.Algorithm.Equal(oidHMACSHA256) || !params.EncryptionScheme.Algorithm.Equal(oidAES256CBC) {
		t.Fatalf("parameters: %d iterations, %d-byte salt, prf %v, cipher %v",
			kdf.IterationCount, len(kdf.Salt), kdf.PRF.Algorithm, params.EncryptionScheme.Algorithm)
	}
	start := time.Now()
	got, err := DecodePEM(data, []byte("pw"))
	if err != nil || !got.PrivateKey().Equal(k.PrivateKey()) {
		t.Fatalf("DecodePEM: %v", err)
	}
	t.Logf("decrypting with %d PBKDF2-HMAC-SHA256 iterations took %v", defaultIterations, time.Since(start))
}

func BenchmarkDecodeEncrypted(b *testing.B) {
	iterations = defaultIterations
	defer func() { iterations = testIterations }()
	data := mustEncode(b, mustGenerate(b), "pw")
	for b.Loop() {
		if _, err := DecodePEM(data, []byte("pw")); err != nil {
			b.Fatal(err)
		}
	}
}
