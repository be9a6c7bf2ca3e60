package p2p

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/poslab/posd/chain"
)

// voteChain is a fakeChain that takes votes: new ones are kept, a
// message with none new is ignored; rejectAt rejects a target height.
type voteChain struct {
	*fakeChain
	vmu      sync.Mutex
	seen     map[chain.Hash]bool
	got      []chain.Vote
	msgs     int
	rejectAt uint64
}

func newVoteChain() *voteChain {
	return &voteChain{fakeChain: newFakeChain("g"), seen: map[chain.Hash]bool{}}
}

func (c *voteChain) HandleVotes(votes []chain.Vote) error {
	c.vmu.Lock()
	defer c.vmu.Unlock()
	c.msgs++
	fresh := 0
	for _, v := range votes {
		if c.rejectAt != 0 && v.Target.Height == c.rejectAt {
			return Reject(errors.New("vote for a block that breaks a rule"))
		}
		if id := v.ID("test"); !c.seen[id] {
			c.seen[id] = true
			c.got = append(c.got, v)
			fresh++
		}
	}
	if fresh == 0 {
		return ErrIgnore
	}
	return nil
}

func (c *voteChain) has(target uint64) bool {
	c.vmu.Lock()
	defer c.vmu.Unlock()
	return slices.ContainsFunc(c.got, func(v chain.Vote) bool { return v.Target.Height == target })
}

func (c *voteChain) messages() int {
	c.vmu.Lock()
	defer c.vmu.Unlock()
	return c.msgs
}

func voteKey(i int) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	return ed25519.NewKeyFromSeed(seed)
}

func signedVote(k int, s, t uint64) chain.Vote {
	v := chain.Vote{Source: chain.Checkpoint{Height: s, Hash: chain.Hash{byte(s)}}, Target: chain.Checkpoint{Height: t, Hash: chain.Hash{byte(t)}}}
	v.Sign("test", voteKey(k))
	return v
}

func voteMsg(votes ...chain.Vote) []byte {
	data, used := encodeVoteBatch(votes)
	if used != len(votes) {
		panic("batch too long")
	}
	return data
}

func TestVoteBatchCodec(t *testing.T) {
	votes := []chain.Vote{signedVote(1, 1, 2), signedVote(2, 3, 9)}
	data := voteMsg(votes...)
	got, err := decodeVoteBatch(data)
	if err != nil || !slices.Equal(got, votes) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	many := make([]chain.Vote, maxVoteBatch+5)
	for i := range many {
		many[i] = votes[0]
	}
	if full, used := encodeVoteBatch(many); used != maxVoteBatch || len(full) > maxVoteMsg {
		t.Fatalf("a batch took %d votes in %d bytes", used, len(full))
	}
	badVersion := slices.Clone(data)
	badVersion[1] = 9
	tooMany := binary.AppendUvarint(nil, maxVoteBatch+1)
	tooMany = append(tooMany, make([]byte, (maxVoteBatch+1)*chain.EncodedVoteLen)...)
	for name, d := range map[string][]byte{
		"empty":          nil,
		"zero count":     {0},
		"short":          data[:len(data)-1],
		"trailing":       append(slices.Clone(data), 0),
		"bad version":    badVersion,
		"over the limit": tooMany,
		"huge varint":    {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		if _, err := decodeVoteBatch(d); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestVerifyVotesBatch(t *testing.T) {
	ver := chain.NewSigVerifier(0)
	votes := make([]chain.Vote, 200)
	for i := range votes {
		votes[i] = signedVote(i%7, 1, uint64(2+i))
	}
	votes[17].Signature[3] ^= 1
	votes[150].Target.Height++ // signed bytes changed
	votes[151].PublicKey = chain.PublicKey{}
	errs := ver.VerifyVotes("test", votes)
	for i, err := range errs {
		bad := i == 17 || i == 150 || i == 151
		if bad != (err != nil) {
			t.Fatalf("vote %d: %v", i, err)
		}
		if bad && !errors.Is(err, chain.ErrBadVoteSig) {
			t.Fatalf("vote %d: %v, want %v", i, err, chain.ErrBadVoteSig)
		}
	}
	if errs := ver.VerifyVotes("other-chain", votes[:1]); errs[0] == nil {
		t.Fatal("a vote verified under another chain id")
	}
}

func TestVoteValidatorResults(t *testing.T) {
	c := newVoteChain()
	c.rejectAt = 66
	n := startNode(t, c, nil)
	other, _ := peer.Decode("12D3KooWGEiwPkXEVQYquWAnBi7GJ5mw41CVEtRDUyrAV1zMfsrh")
	msg := func(data []byte) *pubsub.Message { return &pubsub.Message{Message: &pb.Message{Data: data}} }
	ctx := context.Background()
	badSig := signedVote(1, 1, 5)
	badSig.Signature[0] ^= 1
	noLink := signedVote(1, 5, 5)

	cases := []struct {
		name    string
		from    peer.ID
		data    []byte
		want    pubsub.ValidationResult
		handled bool
	}{
		{"new votes", other, voteMsg(signedVote(1, 1, 2), signedVote(2, 1, 2)), pubsub.ValidationAccept, true},
		{"known votes", other, voteMsg(signedVote(1, 1, 2)), pubsub.ValidationIgnore, true},
		{"one bad signature", other, voteMsg(signedVote(1, 1, 3), badSig), pubsub.ValidationReject, false},
		{"target not above source", other, voteMsg(signedVote(1, 1, 4), noLink), pubsub.ValidationReject, false},
		{"garbage", other, []byte{1, 2, 3}, pubsub.ValidationReject, false},
		{"handler rejects", other, voteMsg(signedVote(1, 1, 66)), pubsub.ValidationReject, true},
		{"own message", n.host.ID(), []byte{1, 2, 3}, pubsub.ValidationAccept, false},
	}
	for _, tc := range cases {
		before := c.messages()
		if got := n.validateVotes(ctx, tc.from, msg(tc.data)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		if handled := c.messages() > before; handled != tc.handled {
			t.Errorf("%s: handled %v, want %v", tc.name, handled, tc.handled)
		}
	}
	if c.has(3) || c.has(4) {
		t.Fatal("a good vote of a rejected message reached the handler")
	}
	// Four rejections counted against the sender.
	if got := n.book.penaltyOf(other, time.Now()); got < 3.9 || got > 4 {
		t.Errorf("penalty %v, want about 4", got)
	}
	s := n.VoteStats()
	if s.MsgsAccepted != 1 || s.MsgsIgnored != 1 || s.MsgsRejected != 4 || s.VotesValid != 4 {
		t.Errorf("stats %+v", s)
	}
}

func TestVoteBudget(t *testing.T) {
	c := newVoteChain()
	n := startNode(t, c, nil)
	other, _ := peer.Decode("12D3KooWGEiwPkXEVQYquWAnBi7GJ5mw41CVEtRDUyrAV1zMfsrh")
	msg := func(data []byte) *pubsub.Message { return &pubsub.Message{Message: &pb.Message{Data: data}} }
	now := time.Now()
	admitted := 0
	for n.book.admitVotes(other, 1, now) {
		admitted++
	}
	if admitted != 2*DefaultVoteMsgRate {
		t.Fatalf("a burst of %d messages, want %d", admitted, 2*DefaultVoteMsgRate)
	}
	if n.validateVotes(context.Background(), other, msg(voteMsg(signedVote(1, 1, 2)))) != pubsub.ValidationIgnore ||
		n.VoteStats().MsgsOverBudget != 1 || c.messages() != 0 {
		t.Fatalf("a message over budget: stats %+v, handled %d", n.VoteStats(), c.messages())
	}
	// The votes' own budget: a burst of 2 × DefaultVoteRate votes.
	other2 := peer.ID("another peer")
	if !n.book.admitVotes(other2, 2*DefaultVoteRate, now) || n.book.admitVotes(other2, 1, now) {
		t.Fatal("the vote budget is not 2 × DefaultVoteRate")
	}
	if n.book.penaltyOf(other, time.Now()) != 0 {
		t.Fatal("a peer over its budget was penalised")
	}
}

func voteLine(t *testing.T, chains []*voteChain) []*Node {
	nodes := make([]*Node, len(chains))
	for i, c := range chains {
		if i == 0 {
			nodes[i] = startNode(t, c, nil)
		} else {
			nodes[i] = startNode(t, c, nil, nodes[i-1])
		}
	}
	for i := 1; i < len(nodes); i++ {
		a, b := nodes[i-1], nodes[i]
		waitFor(t, 10*time.Second, "vote meshes", func() bool {
			return slices.Contains(a.mesh.peers(VoteTopic("test")), b.host.ID()) &&
				slices.Contains(b.mesh.peers(VoteTopic("test")), a.host.ID())
		})
	}
	return nodes
}

// TestGossipVotes: votes published by A reach C through B, batched; a
// message B finds bad is not forwarded to C.
func TestGossipVotes(t *testing.T) {
	chains := []*voteChain{newVoteChain(), newVoteChain(), newVoteChain()}
	nodes := voteLine(t, chains)
	a, b, c := nodes[0], nodes[1], nodes[2]
	if slices.Contains(a.ps.GetTopics(), VoteTopic("test")) || !slices.Contains(a.bps.GetTopics(), VoteTopic("test")) {
		t.Fatal("votes not on the block router alone")
	}

	votes := make([]chain.Vote, 300) // two messages
	for i := range votes {
		votes[i] = signedVote(i, 1, 2)
	}
	a.PublishVotes(votes[:150])
	a.PublishVotes(votes[150:])
	waitFor(t, 10*time.Second, "300 votes at C", func() bool {
		chains[2].vmu.Lock()
		defer chains[2].vmu.Unlock()
		return len(chains[2].got) == 300
	})
	if chains[0].has(2) {
		t.Fatal("own votes handed to own handler")
	}
	if s := a.VoteStats(); s.VotesPublished != 300 {
		t.Fatalf("A published %d votes", s.VotesPublished)
	}

	// A bad signature: published raw by A (its validator passes its own
	// messages), rejected by B, never forwarded to C.
	bad := signedVote(1, 1, 7)
	bad.Signature[0] ^= 1
	if err := a.votes.topic.Publish(context.Background(), voteMsg(bad, signedVote(2, 1, 7))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "B rejects", func() bool { return b.VoteStats().MsgsRejected == 1 })
	a.PublishVotes([]chain.Vote{signedVote(3, 1, 8)})
	waitFor(t, 10*time.Second, "the good vote at C", func() bool { return chains[2].has(8) })
	if chains[2].has(7) || c.VoteStats().MsgsRejected != 0 {
		t.Fatalf("a message B rejected reached C: %+v", c.VoteStats())
	}
}

// TestNoVoteHandlerNoTopic: a handler that takes no votes leaves the topic
// unjoined and PublishVotes does nothing.
func TestNoVoteHandlerNoTopic(t *testing.T) {
	n := startNode(t, newFakeChain("g"), nil)
	if slices.Contains(n.bps.GetTopics(), VoteTopic("test")) {
		t.Fatal("joined the vote topic without a vote handler")
	}
	n.PublishVotes([]chain.Vote{signedVote(1, 1, 2)})
	if n.VoteStats() != (VoteStats{}) {
		t.Fatal("stats without a topic")
	}
}

// FuzzDecodeVoteBatch: a gossiped vote batch never panics the decoder,
// never yields more than maxVoteBatch votes, and what decodes re-encodes
// to the same bytes.
func FuzzDecodeVoteBatch(f *testing.F) {
	f.Add(voteMsg(signedVote(1, 1, 2)))
	f.Add(voteMsg(signedVote(1, 1, 2), signedVote(2, 3, 4)))
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		votes, err := decodeVoteBatch(data)
		if err != nil {
			return
		}
		if len(votes) == 0 || len(votes) > maxVoteBatch {
			t.Fatalf("%d votes decoded", len(votes))
		}
		if again, _ := encodeVoteBatch(votes); !bytes.Equal(again, data) {
			t.Fatalf("vote batch round trip changed the bytes:\n%x\n%x", data, again)
		}
	})
}
