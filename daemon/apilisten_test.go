package daemon

import (
	"strings"
	"testing"
)

// H1: beyond loopback the API warns, naming clear-text tokens without TLS.
// (Tests bind loopback only, so the decision is tested here and the real
// listener in cmd/posd TestExposure.)
func TestExposureWarning(t *testing.T) {
	for _, tc := range []struct {
		host      string
		tls       bool
		warn      bool
		clearText bool
	}{
		{"127.0.0.1", false, false, false},
		{"::1", false, false, false},
		{"localhost", false, false, false},
		{"127.0.0.2", false, false, false},
		{"0.0.0.0", false, true, true},
		{"", false, true, true},
		{"::", true, true, false},
		{"192.168.1.5", true, true, false},
	} {
		msg := exposureWarning(tc.host, "addr", tc.tls)
		if (msg != "") != tc.warn || strings.Contains(msg, "clear text") != tc.clearText {
			t.Errorf("host %q tls %v: %q", tc.host, tc.tls, msg)
		}
	}
}
