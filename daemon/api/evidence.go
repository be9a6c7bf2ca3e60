package api

import (
	"encoding/json"
	"net/http"

	"github.com/poslab/posd/chain/rpc"
)

// EvidenceBackend is a Backend that knows of equivocations. The API asks
// for it by type assertion, so backends without it (tests' fakes) answer
// GET /v1/evidence with 404 and send no evidence events.
type EvidenceBackend interface {
	// Evidence lists the equivocations known, newest height first.
	Evidence() []rpc.Evidence
	// SubscribeEvidence delivers "evidence" and "slashing" events until
	// cancel is called.
	SubscribeEvidence() (ch <-chan rpc.EvidenceEvent, cancel func())
}

// evidence is GET /v1/evidence: a JSON list of rpc.Evidence.
func (s *server) evidence(w http.ResponseWriter, r *http.Request) error {
	eb, ok := s.b.(EvidenceBackend)
	if !ok {
		return apiErr(codeNotFound, "this node keeps no evidence")
	}
	s.writeJSON(w, r, http.StatusOK, nonNil(eb.Evidence()))
	return nil
}

// evidenceEvents subscribes /v1/events to evidence events: a nil channel
// (never ready) when the backend has none.
func (s *server) evidenceEvents() (<-chan rpc.EvidenceEvent, func()) {
	eb, ok := s.b.(EvidenceBackend)
	if !ok {
		return nil, func() {}
	}
	return eb.SubscribeEvidence()
}

// evidenceMessage is the SSE message of an evidence event.
func evidenceMessage(ev rpc.EvidenceEvent) []byte {
	data, _ := json.Marshal(ev.Evidence)
	msg := make([]byte, 0, len(data)+32)
	msg = append(msg, "event: "...)
	msg = append(msg, ev.Type...)
	msg = append(msg, "\ndata: "...)
	msg = append(msg, data...)
	return append(msg, "\n\n"...)
}
