package p2p

import (
	"context"
	"errors"
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/poslab/posd/chain"
)

// Evidence of equivocation travels on a topic of its own, so a node that
// saw two blocks for one slot tells the forgers that did not. A handler
// that does not implement EvidenceHandler leaves the topic unjoined.

// EvidenceTopic names the evidence gossip topic of a chain.
func EvidenceTopic(chainID string) string { return "/posd/" + chainID + "/evidence/1" }

// maxEvidenceMsg bounds an evidence message: two headers of bounded fields.
const maxEvidenceMsg = 4096

// EvidenceHandler is a Handler that takes evidence. HandleEvidence returns
// nil for evidence new and valid here (forwarded), ErrIgnore (or any
// error not wrapping ErrReject) for evidence known or too old (dropped),
// and a Reject for malformed evidence (the sender penalised).
type EvidenceHandler interface {
	HandleEvidence(e *chain.Evidence) error
}

// startEvidenceGossip joins the evidence topic if the handler takes
// evidence. Called by startGossip once pubsub runs.
func (n *Node) startEvidenceGossip() error {
	eh, ok := n.h.(EvidenceHandler)
	if !ok {
		return nil
	}
	name := EvidenceTopic(n.cfg.ChainID)
	validate := func(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		if from == n.host.ID() {
			return pubsub.ValidationAccept
		}
		if len(msg.Data) > maxEvidenceMsg {
			n.offence(from, "evidence message", fmt.Errorf("%d bytes (limit %d)", len(msg.Data), maxEvidenceMsg))
			return pubsub.ValidationReject
		}
		if !n.enter() {
			return pubsub.ValidationIgnore
		}
		defer n.leave()
		e, err := chain.DecodeEvidence(msg.Data)
		if err != nil {
			n.offence(from, "evidence message", err)
			return pubsub.ValidationReject
		}
		switch err := eh.HandleEvidence(e); {
		case err == nil:
			return pubsub.ValidationAccept
		case IsReject(err):
			n.offence(from, "evidence message", err)
			return pubsub.ValidationReject
		case errors.Is(err, ErrIgnore):
			return pubsub.ValidationIgnore
		default:
			return pubsub.ValidationIgnore
		}
	}
	if err := n.bps.RegisterTopicValidator(name, validate); err != nil {
		return fmt.Errorf("p2p: evidence validator: %w", err)
	}
	t, err := n.bps.Join(name)
	if err != nil {
		return fmt.Errorf("p2p: join %s: %w", name, err)
	}
	sub, err := t.Subscribe(pubsub.WithBufferSize(64))
	if err != nil {
		return fmt.Errorf("p2p: subscribe: %w", err)
	}
	n.evTopic = t
	n.subs = append(n.subs, sub)
	n.spawn(func() {
		for {
			if _, err := sub.Next(n.ctx); err != nil {
				return
			}
		}
	})
	return nil
}

// PublishEvidence gossips one evidence item. It does not wait.
func (n *Node) PublishEvidence(e *chain.Evidence) {
	if n.evTopic == nil {
		return
	}
	n.enqueue(n.evTopic, chain.EncodeEvidence(e))
}
