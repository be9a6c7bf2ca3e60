package keystore

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func needOpenSSL(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is absent from PATH; skipping OpenSSL interoperability test")
	}
	return path
}

// runOpenSSL runs openssl and returns its standard output.
func runOpenSSL(t *testing.T, openssl string, args ...string) string {
	t.Helper()
	var stderr strings.Builder
	cmd := exec.Command(openssl, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// TestOpenSSLReadsOurKeys: openssl pkey reads what Save writes, encrypted
// with the real default parameters too, and finds our public key in it.
func TestOpenSSLReadsOurKeys(t *testing.T) {
	openssl := needOpenSSL(t)
	iterations = defaultIterations
	defer func() { iterations = testIterations }()

	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.pem")
	enc := filepath.Join(dir, "enc.pem")
	kPlain, kEnc := mustGenerate(t), mustGenerate(t)
	if err := Save(plain, kPlain, nil); err != nil {
		t.Fatal(err)
	}
	if err := Save(enc, kEnc, []byte("s3cret pass")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		k    *Key
		args []string
	}{
		{"plain", kPlain, []string{"pkey", "-in", plain, "-pubout"}},
		{"encrypted", kEnc, []string{"pkey", "-in", enc, "-passin", "pass:s3cret pass", "-pubout"}},
	} {
		want, err := PublicKeyPEM(tc.k.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		if got := runOpenSSL(t, openssl, tc.args...); got != string(want) {
			t.Errorf("%s: openssl reads public key\n%s\nwant\n%s", tc.name, got, want)
		}
	}
	if err := exec.Command(openssl, "pkey", "-in", enc, "-passin", "pass:wrong", "-noout").Run(); err == nil {
		t.Fatal("openssl accepted a wrong passphrase")
	}
}

// TestWeReadOpenSSLKeys: keys from openssl genpkey, and the same key
// encrypted by openssl pkcs8 (PBES2 with its default SHA-256 PRF, and with
// the SHA-1 PRF it leaves out of the file), load with the same address.
func TestWeReadOpenSSLKeys(t *testing.T) {
	openssl := needOpenSSL(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.pem")
	runOpenSSL(t, openssl, "genpkey", "-algorithm", "ed25519", "-out", plain)
	k, err := Load(plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "pub.pem")
	runOpenSSL(t, openssl, "pkey", "-in", plain, "-pubout", "-out", pubFile)
	pubPEM, err := readKeyFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := parsePublicPEM(pubPEM)
	if err != nil || !pub.Equal(k.PublicKey()) {
		t.Fatalf("openssl's public key differs from ours: %v", err)
	}
	ours, _ := PublicKeyPEM(k.PublicKey())
	if string(ours) != string(pubPEM) {
		t.Errorf("PublicKeyPEM differs from openssl's:\n%s\n%s", ours, pubPEM)
	}

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"aes-256-cbc", []string{"-v2", "aes-256-cbc"}},
		{"aes-128-cbc sha1", []string{"-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1"}},
		{"aes-192-cbc sha512", []string{"-v2", "aes-192-cbc", "-v2prf", "hmacWithSHA512", "-iter", "5000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := filepath.Join(t.TempDir(), "enc.pem")
			args := append([]string{"pkcs8", "-topk8", "-in", plain, "-out", enc, "-passout", "pass:PW"}, tc.args...)
			runOpenSSL(t, openssl, args...)
			if e, err := IsEncrypted(enc); err != nil || !e {
				t.Fatalf("IsEncrypted = %v, %v", e, err)
			}
			got, err := Load(enc, []byte("PW"))
			if err != nil {
				t.Fatal(err)
			}
			if got.Address() != k.Address() {
				t.Fatalf("address %s, want %s", got.Address(), k.Address())
			}
			if _, err := Load(enc, []byte("pw")); err == nil {
				t.Fatal("wrong passphrase accepted")
			}
		})
	}
}
