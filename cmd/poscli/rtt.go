package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/poslab/posd/chain/rpc"
)

// rttText is a round-trip time in milliseconds as tables show it: "82 ms",
// "3.3 ms" or "0.18 ms"; "-" for a peer not measured yet (the node pings
// each peer right after connecting, then every 10 s).
func rttText(ms float64) string {
	switch {
	case !(ms > 0):
		return "-"
	case ms < 1:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 10:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.0f ms", ms)
	}
}

// sortByRTT orders peers nearest first (by the moving average), the
// unmeasured last, then by id.
func sortByRTT(peers []rpc.Peer) {
	slices.SortStableFunc(peers, func(a, b rpc.Peer) int {
		if (a.RTTMs > 0) != (b.RTTMs > 0) {
			if a.RTTMs > 0 {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.RTTMs, b.RTTMs), strings.Compare(a.ID, b.ID))
	})
}
