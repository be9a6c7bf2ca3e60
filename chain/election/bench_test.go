package election

import (
	"fmt"
	"testing"
)

func mustGet(b *testing.B, name string) Algorithm {
	a, err := Get(name)
	if err != nil {
		b.Fatal(err)
	}
	return a
}

func BenchmarkLotteryOneStaker5000(b *testing.B) {
	lot := mustGet(b, "lottery")
	tab := NewStakeTable(map[string]uint64{"alice": 5000})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		lot.Rank(fmt.Sprint(i), tab, 1)
	}
}

func BenchmarkLottery(b *testing.B) {
	lot := mustGet(b, "lottery")
	tab := NewStakeTable(map[string]uint64{
		"genesis": 1, "alice": 20, "bob": 30, "carol": 10, "dave": 5, "zoë": 15,
		"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END PUBLIC KEY-----": 19,
	})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		lot.Rank(fmt.Sprint(i), tab, 3)
	}
}

func stakes100k() map[string]uint64 {
	m := make(map[string]uint64, 100000)
	for i := range 100000 {
		m[fmt.Sprintf("staker-%06d", i)] = uint64(i%1000 + 1)
	}
	return m
}

func BenchmarkWeighted100k(b *testing.B) {
	w := mustGet(b, "weighted")
	tab := NewStakeTable(stakes100k())
	seeds := make([]string, 1024)
	for i := range seeds {
		seeds[i] = fmt.Sprintf("%064x", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		w.Rank(seeds[i%len(seeds)], tab, 8)
	}
}

func BenchmarkNewStakeTable100k(b *testing.B) {
	m := stakes100k()
	b.ReportAllocs()
	for b.Loop() {
		NewStakeTable(m)
	}
}
