package election

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"unicode/utf8"
)

func pyQuote(s string) string { return string(appendPyQuote(nil, s)) }

func TestPyQuoteInline(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x7f", `"\u007f"`}, // json.dumps escapes DEL
		{"/<>&'", `"/<>&'"`},
		{"zoë", `"zo\u00eb"`},
		{"Ω日", `"\u03a9\u65e5"`},
		{"\u2028\ufeff", `"\u2028\ufeff"`},
		{"🦊", `"\ud83e\udd8a"`},
		{"\U0010ffff", `"\udbff\udfff"`},
		// Invalid UTF-8: each bad byte is U+FFFD (documented choice).
		{"a\xffb", `"a\ufffdb"`},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`},
		{"\xc3", `"\ufffd"`},
		{"\xf0\x9f\xa6", `"\ufffd\ufffd\ufffd"`},
	}
	for _, tc := range tests {
		if got := pyQuote(tc.in); got != tc.want {
			t.Errorf("pyQuote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestPyQuotePython compares against json.dumps outputs recorded by
// testdata/lottery_reference.py.
func TestPyQuotePython(t *testing.T) {
	data, err := os.ReadFile("testdata/pyquote_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vecs []struct {
		InUTF8Hex string `json:"in_utf8_hex"`
		In        string `json:"in"`
		Out       string `json:"out"`
	}
	if err := json.Unmarshal(data, &vecs); err != nil {
		t.Fatal(err)
	}
	if len(vecs) < 10 {
		t.Fatalf("only %d vectors", len(vecs))
	}
	for _, v := range vecs {
		in, err := hex.DecodeString(v.InUTF8Hex)
		if err != nil {
			t.Fatal(err)
		}
		if string(in) != v.In {
			t.Fatalf("vector file inconsistent: %q vs %q", in, v.In)
		}
		if got := pyQuote(string(in)); got != v.Out {
			t.Errorf("pyQuote(%q) = %s, python: %s", in, got, v.Out)
		}
	}
}

func FuzzPyQuote(f *testing.F) {
	for _, s := range []string{"", "abc", "a\"b\\c", "\n\r\t\b\f\x00\x1f\x7f", "zoë", "🦊𝄞", "\u2028",
		"\xff", "\xed\xa0\x80", "a\xc3", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendPyQuote(nil, s)
		for i, c := range out {
			if c >= utf8.RuneSelf {
				t.Fatalf("non-ASCII byte %#x at %d in %q", c, i, out)
			}
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("output %q is not a JSON string: %v", out, err)
		}
		// Valid UTF-8 round-trips; invalid bytes decode as U+FFFD, like
		// ranging over the string.
		if want := string([]rune(s)); back != want {
			t.Fatalf("round trip of %q gave %q, want %q", s, back, want)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("round trip of valid %q gave %q", s, back)
		}
		// Appending must not disturb the prefix.
		if got := appendPyQuote([]byte("x"), s); string(got) != "x"+string(out) {
			t.Fatalf("append changed result")
		}
	})
}

func TestAppendPyQuoteConcat(t *testing.T) {
	for _, c := range [][2]string{{"", ""}, {"alice", "abc"}, {"a\"b", "\\c\n"}, {"zoë", "x"}, {"\xe2\x82", "\xac!"}, {"plain", "\xffé"}} {
		got := string(appendPyQuoteConcat([]byte("pre"), c[0], c[1]))
		want := string(appendPyQuote([]byte("pre"), c[0]+c[1]))
		if got != want {
			t.Errorf("%q + %q: got %s, want %s", c[0], c[1], got, want)
		}
	}
}

// TestIsPlain: isPlain says exactly when appendPyQuote adds nothing but
// the quotes.
func TestIsPlain(t *testing.T) {
	for c := 0; c < 256; c++ {
		s := string([]byte{'a', byte(c), 'z'})
		plain := string(appendPyQuote(nil, s)) == `"`+s+`"`
		if isPlain(s) != plain {
			t.Errorf("byte %#x: isPlain %v, quoting adds escapes: %v", c, isPlain(s), !plain)
		}
	}
}
