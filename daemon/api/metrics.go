package api

import (
	"net/http"
)

// metrics is GET /metrics: the registry of Options.Metrics (the node's
// counters, gauges and histograms, libp2p's, Go's and the process's) in
// the Prometheus text format.
func (s *server) metrics(w http.ResponseWriter, r *http.Request) error {
	s.promHandler.ServeHTTP(w, r)
	return nil
}
