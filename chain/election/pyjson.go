package election

import "unicode/utf8"

const lowerHex = "0123456789abcdef"

// appendPyQuote appends s written as a JSON string exactly the way Python 3's
// json.dumps(s) writes it with its defaults (ensure_ascii=True):
//
//   - surrounding double quotes;
//   - `"` and `\` escaped as `\"` and `\\`;
//   - \n \r \t \b \f as those two-character escapes;
//   - other characters below 0x20, and DEL (0x7f), as \u00XX (lowercase
//     hex); Python escapes everything outside ' '..'~', so 0x7f is written
//     \u007f, not literally;
//   - 0x20..0x7e literally;
//   - every other code point as \uXXXX with lowercase hex, code points above
//     U+FFFF as a UTF-16 surrogate pair of two \uXXXX escapes.
//
// The output is pure ASCII.
//
// Invalid UTF-8: Python str values are code point sequences, so they have no
// counterpart of a Go string that is not valid UTF-8. Such input is decoded
// the way a Go range loop decodes it: every byte that does not start a valid
// UTF-8 sequence becomes U+FFFD and is written as \ufffd. (In particular,
// UTF-8-encoded surrogates such as "\xed\xa0\x80" become three \ufffd, not
// \ud800.)
func appendPyQuote(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is pending literal output
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c <= '~' && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:]) // RuneError, 1 on bad byte
		if r > 0xffff {
			r -= 0x10000
			dst = appendU4(dst, 0xd800+(r>>10))
			dst = appendU4(dst, 0xdc00+(r&0x3ff))
		} else {
			dst = appendU4(dst, r)
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// plainByte[c] is true when appendPyQuote writes byte c as itself.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c <= '~'; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// isPlain reports whether appendPyQuote writes s as itself between quotes.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

// appendPyQuoteConcat is appendPyQuote(dst, a+b) without building a+b
// when a is ASCII (no UTF-8 sequence can then span the join, so quoting
// the parts is quoting the whole).
func appendPyQuoteConcat(dst []byte, a, b string) []byte {
	for i := 0; i < len(a); i++ {
		if a[i] >= utf8.RuneSelf {
			return appendPyQuote(dst, a+b)
		}
	}
	dst = appendPyQuote(dst, a)
	n := len(dst) - 1 // drop a's closing quote and b's opening one
	dst = appendPyQuote(dst[:n], b)
	copy(dst[n:], dst[n+1:])
	return dst[:len(dst)-1]
}

func appendU4(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u',
		lowerHex[(r>>12)&0xf], lowerHex[(r>>8)&0xf], lowerHex[(r>>4)&0xf], lowerHex[r&0xf])
}
