package chain

import (
	"errors"
	"fmt"
	"testing"
)

// A RuleError is its code: it matches a sentinel, a RuleError of the same
// code, and a wrapped one, through errors.Is from either side.
func TestRuleErrorIs(t *testing.T) {
	specific := &RuleError{Code: ErrBadNonce.Code, Message: "nonce 3, want 4"}
	wrapped := fmt.Errorf("tx 2: %w", specific)
	for _, c := range []struct {
		err, target error
		want        bool
	}{
		{specific, ErrBadNonce, true},
		{wrapped, ErrBadNonce, true},
		{specific, fmt.Errorf("as a target: %w", ErrBadNonce), true},
		{specific, ErrBadSignature, false},
		{wrapped, ErrBadSignature, false},
		{specific, errors.New("bad_nonce"), false},
		{errors.New("bad_nonce"), ErrBadNonce, false},
	} {
		if got := errors.Is(c.err, c.target); got != c.want {
			t.Errorf("errors.Is(%v, %v) = %v, want %v", c.err, c.target, got, c.want)
		}
	}
}
