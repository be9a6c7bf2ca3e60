package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// coinsValue is a uint64 flag (--amount, --fee, --from) whose parse errors
// say what is wrong: pflag's own says "must be a non-negative integer" even
// for a number that is merely too large.
type coinsValue uint64

func (v *coinsValue) String() string { return strconv.FormatUint(uint64(*v), 10) }
func (v *coinsValue) Type() string   { return "uint" }

func (v *coinsValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err == nil {
		*v = coinsValue(n)
		return nil
	}
	digits := strings.TrimLeft(s, "+")
	switch {
	case errors.Is(err, strconv.ErrRange):
		return errors.New("too large: the most is 18446744073709551615")
	case strings.HasPrefix(s, "-"):
		return errors.New("must not be negative")
	case strings.ContainsAny(digits, ".eE") && digits != "":
		return errors.New("must be a whole number, without decimals or exponent")
	}
	return errors.New("must be a whole number such as 100")
}

// uint64Flag defines a uint64 flag with the errors of coinsValue.
func uint64Flag(fs *pflag.FlagSet, p *uint64, name string, value uint64, usage string) {
	*p = value
	fs.Var((*coinsValue)(p), name, usage)
}
