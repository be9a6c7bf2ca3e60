package keystore

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
)

// FuzzDecodePEM: DecodePEM never panics, and whatever it accepts is a
// working Ed25519 key.
func FuzzDecodePEM(f *testing.F) {
	k, err := Generate()
	if err != nil {
		f.Fatal(err)
	}
	plain, _ := EncodePEM(k, nil)
	enc, _ := EncodePEM(k, []byte("pw"))
	pub, _ := PublicKeyPEM(k.PublicKey())
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(plain)
	f.Add(enc)
	f.Add(pub)
	f.Add(append(append([]byte("text\n"), pub...), plain...))
	f.Add([]byte{})
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"))
	f.Add(fakeEncrypted(f, oidPBES2, oidPBKDF2, oidAES256CBC, 1))
	f.Add(pkcs8PEM(f, ec))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, pass := range [][]byte{nil, []byte("pw")} {
			k, err := DecodePEM(data, pass)
			if err != nil {
				if k != nil {
					t.Fatal("key and error both returned")
				}
				continue
			}
			if len(k.PrivateKey()) != 64 || !k.Address().Valid() {
				t.Fatalf("accepted a malformed key: %x", k.PrivateKey())
			}
		}
	})
}
