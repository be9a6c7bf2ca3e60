package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// checkPortFree refuses a port another process listens on. libp2p binds its
// TCP port with SO_REUSEPORT, so a second node started without --p2p-port
// would silently share the first one's port (and half its connections); a
// plain bind, which SO_REUSEPORT sockets refuse, finds it out first.
// Port 0 (any free port) is always free.
func checkPortFree(host string, port int, what, flag string) error {
	if port == 0 {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%s port %d: address already in use (is another posd running? choose another with %s)", what, port, flag)
		}
		return fmt.Errorf("%s port %d: %w", what, port, err)
	}
	return ln.Close()
}
