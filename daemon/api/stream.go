package api

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// blockchainPage is how many blocks /blockchain fetches at a time.
const blockchainPage = 500

// streaming returns w's controller and a function that pushes the write
// deadline (Server.WriteTimeout counts from the request) forward before each
// write, so a stream lasts as long as the client keeps reading. Writers
// without deadlines (tests' recorders) ignore it.
func streaming(w http.ResponseWriter) (rc *http.ResponseController, extend func()) {
	rc = http.NewResponseController(w)
	return rc, func() { _ = rc.SetWriteDeadline(time.Now().Add(streamWriteWindow)) }
}

// blockchain is the original's GET /blockchain: {"blocks":[...]} with the
// main chain up to the head at the time of the request, fetched and written
// a page at a time.
func (s *server) blockchain(w http.ResponseWriter, r *http.Request) error {
	end := s.b.Height()
	want := pageSize(0, end)
	page, err := s.b.Blocks(0, want)
	if err != nil {
		return err // nothing written yet: an ordinary error answer
	}
	rc, extend := streaming(w)
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
	extend()
	if _, err := w.Write([]byte(`{"blocks":[`)); err != nil {
		return nil
	}
	n := 0
	for {
		for _, b := range page {
			data, err := json.Marshal(b)
			if err != nil {
				abort("encode block", "err", err)
			}
			if n > 0 {
				data = append([]byte{','}, data...)
			}
			if _, err := w.Write(data); err != nil {
				return nil // the client went away
			}
			n++
		}
		if len(page) < want || page[len(page)-1] == nil {
			break // the chain ends here (or got shorter under us)
		}
		next := page[len(page)-1].Height + 1
		if next > end {
			break
		}
		if r.Context().Err() != nil {
			return nil
		}
		extend()
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
	extend()
	_, _ = w.Write([]byte("]}\n"))
	return nil
}

// pageSize is how many blocks to ask for from height from, at most up to end.
func pageSize(from, end uint64) int {
	if from > end {
		return 0
	}
	if left := end - from + 1; left < blockchainPage {
		return int(left)
	}
	return blockchainPage
}

// events is GET /v1/events: Server-Sent Events, one "block" event per new
// head, a comment line every heartbeat, until the client goes away or the
// node stops.
func (s *server) events(w http.ResponseWriter, r *http.Request) error {
	ch, cancel := s.b.SubscribeBlocks()
	defer cancel()
	evCh, evCancel := s.evidenceEvents() // evidence.go
	defer evCancel()
	rc, extend := streaming(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	send := func(msg []byte) bool {
		extend()
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
	encode := s.eventEncoder(r)
	for {
		var msg []byte
		select {
		case <-r.Context().Done():
			return nil
		case <-tick.C:
			msg = []byte(": heartbeat\n\n")
		case ev, ok := <-evCh:
			if !ok {
				evCh = nil
				continue
			}
			msg = evidenceMessage(ev)
		case b, ok := <-ch:
			if !ok {
				return nil // the node is stopping
			}
			if b == nil {
				continue
			}
			data, err := encode(b)
			if err != nil {
				s.log.Error("api: /v1/events: encode block", "err", err)
				continue
			}
			msg = make([]byte, 0, len(data)+24)
			msg = append(msg, "event: block\ndata: "...)
			msg = append(msg, data...)
			msg = append(msg, "\n\n"...)
		}
		if !send(msg) {
			return nil
		}
	}
}

// metrics is GET /metrics: the backend's metrics as Prometheus gauges.
func (s *server) metrics(w http.ResponseWriter, r *http.Request) error {
	m := s.b.Metrics()
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	var sb strings.Builder
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		metric := metricName(name)
		if seen[metric] {
			s.log.Warn("api: /metrics: two metrics share a name", "name", metric)
			continue
		}
		seen[metric] = true
		sb.WriteString("# TYPE ")
		sb.WriteString(metric)
		sb.WriteString(" gauge\n")
		sb.WriteString(metric)
		sb.WriteByte(' ')
		sb.WriteString(formatFloat(m[name]))
		sb.WriteByte('\n')
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(sb.String()))
	return nil
}

// metricName prefixes name with posd_ (unless it has it) and replaces
// characters Prometheus names cannot hold with '_'.
func metricName(name string) string {
	if !strings.HasPrefix(name, "posd_") {
		name = "posd_" + name
	}
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':') {
			b[i] = '_'
		}
	}
	return string(b)
}

func formatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
