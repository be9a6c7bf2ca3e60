package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Keys, signatures and seed proofs are bytes inside and hex at the edges.
// These tests pin the edges: the JSON and the encodings are what they were
// when the fields were hex strings, the zero value is "" (block 0, an
// unsigned transaction), and text that is not the lowercase hex of the
// field's size is refused where it comes in, with the code validation gave
// it when such text could reach it (bad_public_key, bad_signature,
// bad_seed_proof, wrong_forger for a forger key).

// TestHexFieldsJSONUnchanged pins a signed transaction's JSON byte for
// byte, and the empty text of the zero values.
func TestHexFieldsJSONUnchanged(t *testing.T) {
	tx := Transaction{Type: TxTransfer, ChainID: "posd-test", To: testAddr("bob"), Amount: 5, Fee: 1, Nonce: 7}
	tx.Sign(testKey("alice"))
	pub := fmt.Sprintf("%x", testKey("alice").Public())
	want := `{"id":"cce69c0093ca76b7ba8b61af0fb771b3c6c7547d2e8d4db0305f1a065b655f99","type":"TRANSFER","chain_id":"posd-test",` +
		`"from":"9d375aa99ae0bbd1fa9da8ac5c04bb4772ba2d5c","to":"` + string(testAddr("bob")) + `","amount":5,"fee":1,"nonce":7,` +
		`"public_key":"` + pub + `","signature":"760f28712bc2f75353bde371242967787a749e55756f8aba51508f4be46fc85f77a78f939770832fc5d9e23e714eb8db3002fc8fcc6d4d37583408bdd8e34708"}`
	got, err := json.Marshal(tx)
	if err != nil || string(got) != want {
		t.Fatalf("JSON\n got %s\nwant %s", got, want)
	}
	var back Transaction
	if err := json.Unmarshal(got, &back); err != nil || back != tx {
		t.Fatalf("round trip: %v, %+v", err, back)
	}

	unsigned := Transaction{Type: TxTransfer, ChainID: "posd-test", From: testAddr("alice"), To: testAddr("bob"), Amount: 5}
	js, _ := json.Marshal(unsigned)
	if !bytes.Contains(js, []byte(`"public_key":"","signature":""`)) {
		t.Fatalf("unsigned transaction: %s", js)
	}
	var fromEmpty Transaction
	if err := json.Unmarshal(js, &fromEmpty); err != nil || !fromEmpty.PublicKey.IsZero() || !fromEmpty.Signature.IsZero() {
		t.Fatalf(`"" is not the zero value: %v`, err)
	}
	if err := fromEmpty.CheckStateless("posd-test"); !errors.Is(err, ErrBadPublicKey) {
		t.Fatalf("no key: %v, want bad_public_key", err)
	}
	fromEmpty.PublicKey = tx.PublicKey
	if err := fromEmpty.VerifySignature(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("no signature: %v, want bad_signature", err)
	}

	// Block 0 has no forger key and no seed proof: "" in JSON, length 0 in
	// the codec, as always (its hash, pinned by TestHeaderVector through
	// block 1's prev_hash, covers the signing bytes).
	g := testGenesis(t)
	b0 := g.Block()
	js, _ = json.Marshal(b0)
	for _, f := range []string{`"forger":""`, `"forger_public_key":""`, `"seed_proof":""`, `"signature":""`} {
		if !bytes.Contains(js, []byte(f)) {
			t.Fatalf("block 0 JSON lacks %s: %s", f, js)
		}
	}
	back0, err := DecodeBlock(EncodeBlock(b0))
	if err != nil || back0.Hash() != b0.Hash() || !back0.SeedProof.IsZero() || !back0.ForgerPublicKey.IsZero() {
		t.Fatalf("block 0 through the codec: %v", err)
	}
	var fromJSON Block
	if err := json.Unmarshal(js, &fromJSON); err != nil || fromJSON.Hash() != b0.Hash() {
		t.Fatalf("block 0 through JSON: %v", err)
	}
}

// encodeTxText is appendTx with the key and signature given as text, as
// a peer or a wallet may write them.
func encodeTxText(tx *Transaction, pub, sig string) []byte {
	out := appendString(nil, string(tx.Type))
	out = appendString(out, tx.ChainID)
	out = appendString(out, string(tx.From))
	out = appendString(out, string(tx.To))
	out = binary.BigEndian.AppendUint64(out, tx.Amount)
	out = binary.BigEndian.AppendUint64(out, tx.Fee)
	out = binary.BigEndian.AppendUint64(out, tx.Nonce)
	out = appendString(out, pub)
	return appendString(out, sig)
}

// badTexts are texts no key, signature or proof may have, given the good
// one: each refused with the field's code.
func badTexts(good string) map[string]string {
	return map[string]string{
		"not hex":     "zz" + good[2:],
		"too short":   good[:len(good)-2],
		"too long":    good + "00",
		"odd length":  good[1:],
		"upper case":  strings.ToUpper(good),
		"all zeros":   strings.Repeat("0", len(good)),
		"space":       " " + good[1:],
		"a 0x prefix": "0x" + good[2:],
	}
}

func TestMalformedTxHexRefusedWithItsCode(t *testing.T) {
	tx := signedTx(TxTransfer, "alice", testAddr("bob"), 1, 0, 1)
	pub, sig := tx.PublicKey.String(), tx.Signature.String()
	if got := encodeTxText(&tx, pub, sig); !bytes.Equal(got, EncodeTx(&tx)) {
		t.Fatal("encodeTxText is not the codec")
	}
	for _, f := range []struct {
		field, good string
		want        *RuleError
	}{{"public_key", pub, ErrBadPublicKey}, {"signature", sig, ErrBadSignature}} {
		for name, text := range badTexts(f.good) {
			t.Run(f.field+"/"+name, func(t *testing.T) {
				// JSON: the decoder refuses it with the rule code.
				var m map[string]any
				js, _ := json.Marshal(tx)
				json.Unmarshal(js, &m)
				m[f.field] = text
				js, _ = json.Marshal(m)
				var got Transaction
				err := json.Unmarshal(js, &got)
				var re *RuleError
				if !errors.As(err, &re) || re.Code != f.want.Code {
					t.Fatalf("JSON: %v, want %s", err, f.want.Code)
				}
				// Binary: an error wrapping ErrDecode and the rule code.
				p, s := pub, sig
				if f.field == "public_key" {
					p = text
				} else {
					s = text
				}
				_, err = DecodeTx(encodeTxText(&tx, p, s))
				if !errors.Is(err, ErrDecode) || !errors.Is(err, f.want) || CodeOf(err) != f.want.Code {
					t.Fatalf("binary: %v, want %s wrapping ErrDecode", err, f.want.Code)
				}
			})
		}
	}
	// A structural error after a refused field still wins: the encoding
	// is malformed before any field is judged.
	enc := append(encodeTxText(&tx, "zz"+pub[2:], sig), 1)
	if _, err := DecodeTx(enc); !errors.Is(err, ErrDecode) || CodeOf(err) != "" {
		t.Fatalf("trailing byte after a bad key: %v, want a plain decode error", err)
	}
}

func TestMalformedHeaderHexRefusedWithItsCode(t *testing.T) {
	c := newTestChain(t, testGenesis(t))
	b := c.next(0, signedTx(TxTransfer, "alice", testAddr("bob"), 1, 0, 1))
	enc := EncodeBlock(b)
	js, _ := json.Marshal(b)
	for _, f := range []struct {
		field, good      string
		wantBin, wantDoc *RuleError
	}{
		{"seed_proof", b.SeedProof.String(), ErrBadSeedProof, ErrBadSeedProof},
		{"forger_public_key", b.ForgerPublicKey.String(), ErrWrongForger, ErrBadPublicKey},
	} {
		for name, text := range badTexts(f.good) {
			t.Run(f.field+"/"+name, func(t *testing.T) {
				if len(text) == len(f.good) {
					// Binary, same length: the text in place.
					bad := bytes.Replace(enc, []byte(f.good), []byte(text), 1)
					_, err := DecodeBlock(bad)
					if !errors.Is(err, ErrDecode) || CodeOf(err) != f.wantBin.Code {
						t.Fatalf("binary: %v, want %s wrapping ErrDecode", err, f.wantBin.Code)
					}
				}
				bad := bytes.Replace(js, []byte(`"`+f.field+`":"`+f.good+`"`), []byte(`"`+f.field+`":"`+text+`"`), 1)
				if bytes.Equal(bad, js) {
					t.Fatal("field not found in the JSON")
				}
				var got Block
				err := json.Unmarshal(bad, &got)
				if CodeOf(err) != f.wantDoc.Code {
					t.Fatalf("JSON: %v, want %s", err, f.wantDoc.Code)
				}
			})
		}
	}
	// The forger key and the proof are bytes: the header round-trips.
	back, err := DecodeBlock(enc)
	if err != nil || back.Hash() != b.Hash() || back.ForgerPublicKey != PublicKey(testKey("alice").Public().(ed25519.PublicKey)) {
		t.Fatalf("round trip: %v", err)
	}
}

// TestHexTextZeroValue: the zero value's text is "", "" reads as the zero
// value, and the all-zero bytes have no text that reads back.
func TestHexTextZeroValue(t *testing.T) {
	for _, v := range []interface {
		MarshalText() ([]byte, error)
	}{PublicKey{}, Signature{}, VRFProof{}} {
		if b, _ := v.MarshalText(); len(b) != 0 {
			t.Fatalf("%T zero value: %q", v, b)
		}
	}
	k := PublicKey{1}
	if err := k.UnmarshalText(nil); err != nil || !k.IsZero() {
		t.Fatalf(`"": %v, %v`, err, k)
	}
	if err := k.UnmarshalText([]byte(strings.Repeat("0", 64))); !errors.Is(err, ErrBadPublicKey) {
		t.Fatalf("all zeros: %v", err)
	}
}
