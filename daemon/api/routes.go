package api

import "net/http"

// route is one API endpoint. Adding an endpoint is a handler method and one
// line in routes; nothing else registers handlers.
type route struct {
	method  string // GET also answers HEAD
	pattern string // net/http ServeMux pattern without the method
	admin   bool   // needs the bearer token
	handle  func(s *server, w http.ResponseWriter, r *http.Request) error
}

// routes is the whole API (docs/API.md).
var routes = []route{
	{"GET", "/v1/status", false, (*server).status},
	{"GET", "/v1/accounts", false, (*server).accounts},
	{"GET", "/v1/accounts/{addr}", false, (*server).account},
	{"GET", "/v1/stakes", false, (*server).stakes},
	{"GET", "/v1/blocks", false, (*server).blocks},
	{"GET", "/v1/blocks/{id}", false, (*server).block},
	{"GET", "/v1/blocks/summaries", false, (*server).blockSummaries},
	{"GET", "/v1/blocks/txids", false, (*server).blockTxIDs},
	{"GET", "/v1/txs/pending", false, (*server).pendingTxs},
	{"GET", "/v1/txs/{id}", false, (*server).tx},
	{"POST", "/v1/txs", false, (*server).postTxs},
	{"GET", "/v1/config", true, (*server).config},
	{"PUT", "/v1/config", true, (*server).putConfig},
	{"POST", "/v1/stake", true, (*server).postStake},
	{"GET", "/v1/peers", false, (*server).peers},
	{"GET", "/v1/search", false, (*server).search},
	{"GET", "/v1/genesis", false, (*server).genesis},
	{"GET", "/v1/events", false, (*server).events},
	{"GET", "/v1/evidence", false, (*server).evidence},
	{"GET", "/v1/finality", false, (*server).finality},
	{"GET", "/healthz", false, (*server).healthz},
	{"GET", "/metrics", false, (*server).metrics},
	{"GET", "/{$}", false, (*server).dashboard},
	{"GET", "/ui/{file}", false, (*server).dashboardAsset},

	// The original's routes.
	{"GET", "/pkey", false, (*server).pkey},
	{"GET", "/accounts", false, (*server).balanceMap},
	{"GET", "/stakes", false, (*server).stakeMap},
	{"GET", "/stakes/{amount}", true, (*server).stakeAmount},
	{"GET", "/blockchain", false, (*server).blockchain},
	{"GET", "/transactions", false, (*server).pendingTxs},
	{"GET", "/pool/limit/{n}", true, (*server).poolLimit},
	{"POST", "/transaction", false, (*server).postTransaction},
}
