package api

import (
	_ "embed"
	"net/http"
)

// dashboardHTML is a one-page view of the node for a browser, as the
// original was explored: head, stakes, the newest blocks and the pool,
// refreshed from the /v1 routes every two seconds and on each new block.
//
//go:embed dashboard.html
var dashboardHTML []byte

func (s *server) dashboard(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
	_, err := w.Write(dashboardHTML)
	return err
}
