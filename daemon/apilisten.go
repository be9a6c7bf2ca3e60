package daemon

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/poslab/posd/daemon/api"
)

// APIConfig is how the HTTP API is exposed.
type APIConfig struct {
	// Host is the address the API listens on (--api-host). Empty means
	// Config.Host, which is 127.0.0.1 unless set.
	Host string
	// TLSCert and TLSKey are PEM files (--api-tls-cert, --api-tls-key):
	// with both, the API speaks HTTPS only.
	TLSCert, TLSKey string
	// AllowedHosts are Host names a loopback listener accepts beyond
	// localhost and loopback addresses (--api-allowed-hosts).
	AllowedHosts []string
	// Limits bound connections, streams, pages and answer times
	// (--api-max-conns, ...); zero fields take api.DefaultLimits.
	Limits api.Limits
}

// apiHost is the host the API listens on.
func (c *Config) apiHost() string {
	if c.API.Host != "" {
		return c.API.Host
	}
	return c.Host
}

// apiScheme is http, or https with TLS.
func (c *Config) apiScheme() string {
	if c.API.TLSCert != "" {
		return "https"
	}
	return "http"
}

// listenAPI opens the API's listener (connection cap, TLS) and builds its
// server. On a loopback address the Host header is checked (DNS
// rebinding); beyond loopback the node says loudly that it is exposed.
func (n *Node) listenAPI() (net.Listener, *http.Server, error) {
	c := n.cfg.API
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, nil, fmt.Errorf("--api-tls-cert and --api-tls-key go together")
	}
	var tlsCfg *tls.Config
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, nil, fmt.Errorf("API TLS: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	host := n.cfg.apiHost()
	addr := net.JoinHostPort(host, strconv.Itoa(n.cfg.APIPort))
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("API port: %w", err)
	}
	limits := c.Limits
	conns := api.LimitListener(raw, limits.MaxConns)
	var ln net.Listener = conns
	if tlsCfg != nil {
		ln = tls.NewListener(conns, tlsCfg)
	}
	loopback := isLoopbackHost(host)
	if msg := exposureWarning(host, raw.Addr().String(), tlsCfg != nil); msg != "" {
		n.log.Warn(msg)
	}
	h := api.NewHandler(api.Options{
		Backend: n.api, Token: n.token, Logger: n.log, MaxBodyBytes: 8 << 20, Metrics: n.prom,
		Limits: limits, Conns: conns, CheckHost: loopback, AllowedHosts: c.AllowedHosts,
	})
	srv := api.NewServerLimits(addr, h, limits)
	if tlsCfg != nil {
		srv.TLSConfig = tlsCfg
	}
	return ln, srv, nil
}

// exposureWarning is the loud warning of an API that listens on host
// (bound to addr) beyond loopback, or "" on loopback.
func exposureWarning(host, addr string, tls bool) string {
	if isLoopbackHost(host) {
		return ""
	}
	msg := "WARNING: the API listens beyond loopback: anyone who can reach " + addr + " can read the chain and submit transactions"
	if !tls {
		msg += "; the admin token travels in clear text (use --api-tls-cert/--api-tls-key, or --api-host 127.0.0.1 behind a proxy)"
	}
	return msg
}

// isLoopbackHost reports whether host names only loopback addresses.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
