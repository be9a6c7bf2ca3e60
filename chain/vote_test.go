package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
)

func TestVoteSignEncodeRoundTrip(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(bytes.NewReader(make([]byte, 64)))
	v := Vote{Source: Checkpoint{Height: 4, Hash: Hash{4}}, Target: Checkpoint{Height: 5, Hash: Hash{5}}}
	v.Sign("posd-test", priv)
	if err := v.VerifySignature("posd-test"); err != nil {
		t.Fatal(err)
	}
	if err := v.VerifySignature("other-chain"); !errors.Is(err, ErrBadVoteSig) {
		t.Fatalf("vote verified on another chain: %v", err)
	}
	got, err := DecodeVote(EncodeVote(&v))
	if err != nil || *got != v {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	if got.Voter() != AddressOf(priv.Public().(ed25519.PublicKey)) {
		t.Fatal("voter is not the key's address")
	}
	js, _ := json.Marshal(v)
	var back Vote
	if err := json.Unmarshal(js, &back); err != nil || back != v {
		t.Fatalf("json round trip: %v %s", err, js)
	}
	if !bytes.Contains(js, []byte(`"voter":"`+string(v.Voter())+`"`)) {
		t.Fatalf("json lacks the voter: %s", js)
	}
}

func TestVoteRules(t *testing.T) {
	for _, c := range []struct {
		name     string
		src, tgt uint64
		want     error
	}{
		{"target above source", 3, 4, nil},
		{"target equals source", 4, 4, ErrBadVote},
		{"target below source", 5, 4, ErrBadVote},
	} {
		v := Vote{Source: Checkpoint{Height: c.src}, Target: Checkpoint{Height: c.tgt}}
		if err := v.CheckStateless(); !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	for _, n := range []int{0, EncodedVoteLen - 1, EncodedVoteLen + 1} {
		if _, err := DecodeVote(make([]byte, n)); !errors.Is(err, ErrDecode) {
			t.Errorf("%d bytes decoded: %v", n, err)
		}
	}
	bad := make([]byte, EncodedVoteLen)
	bad[0] = 9
	if _, err := DecodeVote(bad); !errors.Is(err, ErrDecode) {
		t.Errorf("version 9 decoded: %v", err)
	}
}
