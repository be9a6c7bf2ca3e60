package api

import (
	"encoding/json"
	"net/http"
	"time"
)

// blockchainChunk is how many blocks /blockchain (and the paged lists) ask
// the backend for at a time: small, so a page of big blocks is never held
// whole; the byte budget of a page decides how many are written.
const blockchainChunk = 4

// blockchainPage is the most blocks one backend call returns (tests check it).
const blockchainPage = blockchainChunk

// blockchain is the original's GET /blockchain: {"blocks":[...]} with the
// main chain up to the head at the time of the request, fetched a few blocks
// at a time and written as it goes. The whole answer must be written within
// Limits.BlockchainTimeout (a total, set once): a client that stops reading
// holds at most one chunk of blocks and one heavy slot, and only that long.
func (s *server) blockchain(w http.ResponseWriter, r *http.Request) error {
	end := s.b.Height()
	want := pageSize(0, end)
	page, err := s.b.Blocks(0, want)
	if err != nil {
		return err // nothing written yet: an ordinary error answer
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(s.limits.BlockchainTimeout))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	// From here on the status is out: a failure can only abort the
	// connection, so the client sees a broken answer, not a short chain.
	abort := func(msg string, args ...any) {
		s.log.Error("api: /blockchain: "+msg, args...)
		panic(http.ErrAbortHandler)
	}
	if _, err := w.Write([]byte(`{"blocks":[`)); err != nil {
		return nil
	}
	n := 0
	for {
		for i, b := range page {
			data, err := json.Marshal(b)
			if err != nil {
				abort("encode block", "err", err)
			}
			page[i] = nil // let the block go as soon as it is encoded
			if n > 0 {
				data = append([]byte{','}, data...)
			}
			if _, err := w.Write(data); err != nil {
				return nil // the client went away or the deadline passed
			}
			n++
		}
		if len(page) < want || n == 0 {
			break // the chain ends here (or got shorter under us)
		}
		next := uint64(n)
		if next > end {
			break
		}
		if r.Context().Err() != nil {
			return nil
		}
		_ = rc.Flush()
		want = pageSize(next, end)
		page, err = s.b.Blocks(next, want)
		if err != nil {
			abort("read blocks", "from", next, "err", err)
		}
		if len(page) > 0 && (page[0] == nil || page[0].Height != next) {
			abort("backend returned blocks out of order", "from", next)
		}
	}
	_, _ = w.Write([]byte("]}\n"))
	return nil
}

// pageSize is how many blocks to ask for from height from, at most up to end.
func pageSize(from, end uint64) int {
	if from > end {
		return 0
	}
	if left := end - from + 1; left < blockchainChunk {
		return int(left)
	}
	return blockchainChunk
}

// events is GET /v1/events: Server-Sent Events, one "block" event per new
// head, "evidence" and "slashing" events, "justified" and "finalized"
// events (data: {"checkpoint":{"height","hash"},"time"}), a comment line every heartbeat, until the client goes away, the
// node stops, the stream reaches Limits.StreamMaxAge, or the client falls
// more than Limits.EventBufferBytes behind (then the stream ends with a
// "dropped" comment; the client may reconnect and catch up from the API).
func (s *server) events(w http.ResponseWriter, r *http.Request) error {
	summary := r.URL.Query().Get("summary")
	sub, ok := s.hub.joinAs(summary == "1" || summary == "true")
	if !ok {
		w.Header().Set("Connection", "close")
		return apiErr(codeTooManyStreams, "%d event streams are open already, the node's limit", s.limits.MaxEventStreams)
	}
	defer s.hub.leave(sub)
	rc := http.NewResponseController(w)
	evCh, evCancel := s.evidenceEvents() // evidence.go: rare, small messages
	defer evCancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	send := func(msg []byte) bool {
		// Each event has its own deadline: a total per write, not one
		// pushed forward while the write is stuck.
		_ = rc.SetWriteDeadline(time.Now().Add(s.limits.EventWriteTimeout))
		if _, err := w.Write(msg); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send([]byte(": posd events\n\n")) {
		return nil
	}
	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	maxAge := time.NewTimer(s.limits.StreamMaxAge)
	defer maxAge.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-maxAge.C:
			send([]byte(": stream reached its maximum age; reconnect\n\n"))
			return nil
		case <-tick.C:
			if !send([]byte(": heartbeat\n\n")) {
				return nil
			}
		case ev, ok := <-evCh:
			if !ok {
				evCh = nil
				continue
			}
			if !send(evidenceMessage(ev)) {
				return nil
			}
		case <-sub.wake:
			for {
				msg, state := sub.next()
				if state == subDropped {
					send([]byte(": dropped: this client fell too far behind\n\n"))
					return nil
				}
				if state == subClosed {
					return nil // the node is stopping
				}
				if msg == nil {
					break
				}
				if !send(msg) {
					return nil
				}
			}
		}
	}
}
