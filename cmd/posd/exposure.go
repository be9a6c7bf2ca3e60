package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/poslab/posd/daemon"
	"github.com/poslab/posd/daemon/api"
)

// addExposureFlags adds the flags of where and how the node listens, its
// API limits and the key-recovery switch to `posd start`.
func addExposureFlags(cmd *cobra.Command, c *daemon.Config) {
	f := cmd.Flags()
	d := api.DefaultLimits()
	f.StringVar(&c.API.Host, "api-host", "127.0.0.1", "address the HTTP API listens on; beyond loopback the node warns loudly")
	f.StringVar(&c.Host, "p2p-host", "127.0.0.1", "address libp2p listens on (0.0.0.0 to take peers from anywhere)")
	f.Var(&hostAlias{fs: f, c: c}, "host", "address for both the API and libp2p")
	_ = f.MarkDeprecated("host", "use --api-host and --p2p-host")
	f.StringVar(&c.API.TLSCert, "api-tls-cert", "", "PEM certificate: serve the API over HTTPS (with --api-tls-key)")
	f.StringVar(&c.API.TLSKey, "api-tls-key", "", "PEM private key of --api-tls-cert")
	f.StringSliceVar(&c.API.AllowedHosts, "api-allowed-hosts", nil, "Host names a loopback API accepts besides localhost and loopback addresses (DNS-rebinding guard), comma-separated")
	f.BoolVar(&c.NewKey, "new-key", false, "make a new node key although the home holds a chain whose key is gone")

	l := &c.API.Limits
	f.IntVar(&l.MaxConns, "api-max-conns", d.MaxConns, "most open HTTP connections; more are answered 503 and closed")
	f.IntVar(&l.MaxEventStreams, "api-max-streams", d.MaxEventStreams, "most concurrent /v1/events subscribers")
	f.IntVar(&l.EventBufferBytes, "api-stream-buffer", d.EventBufferBytes, "bytes of events a subscriber may fall behind before it is dropped")
	f.DurationVar(&l.EventWriteTimeout, "api-event-write-timeout", d.EventWriteTimeout, "time one event may take to reach a subscriber")
	f.DurationVar(&l.StreamMaxAge, "api-stream-max-age", d.StreamMaxAge, "an event stream ends after this; clients reconnect")
	f.IntVar(&l.MaxHeavy, "api-max-lists", d.MaxHeavy, "most list answers (blocks, pool, accounts, /blockchain) written at once")
	f.IntVar(&l.MaxPageBytes, "api-page-bytes", d.MaxPageBytes, "most JSON bytes in one list page")
	f.DurationVar(&l.WriteTimeout, "api-write-timeout", d.WriteTimeout, "total time to write one answer")
	f.DurationVar(&l.BlockchainTimeout, "api-blockchain-timeout", d.BlockchainTimeout, "total time to write GET /blockchain")
}

// hostAlias is the deprecated --host: it sets --api-host and --p2p-host,
// each unless given explicitly.
type hostAlias struct {
	fs  *pflag.FlagSet
	c   *daemon.Config
	val string
}

func (h *hostAlias) String() string { return h.val }
func (h *hostAlias) Type() string   { return "string" }

func (h *hostAlias) Set(v string) error {
	h.val = v
	if fl := h.fs.Lookup("api-host"); fl == nil || !fl.Changed {
		h.c.API.Host = v
	}
	if fl := h.fs.Lookup("p2p-host"); fl == nil || !fl.Changed {
		h.c.Host = v
	}
	return nil
}
