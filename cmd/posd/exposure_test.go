package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/daemon/api"
)

// The exposure flags resolve without a process: --host is an alias of
// --api-host and --p2p-host that never overrides them; limits default to
// api.DefaultLimits.
func TestExposureFlags(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		api, p2p   string
		maxConns   int
		pageBytes  int
		streamsAge time.Duration
	}{
		{nil, "127.0.0.1", "127.0.0.1", api.DefaultLimits().MaxConns, api.DefaultLimits().MaxPageBytes, api.DefaultLimits().StreamMaxAge},
		{[]string{"--host", "0.0.0.0"}, "0.0.0.0", "0.0.0.0", 512, 4 << 20, 30 * time.Minute},
		{[]string{"--api-host", "127.0.0.1", "--host", "0.0.0.0"}, "127.0.0.1", "0.0.0.0", 512, 4 << 20, 30 * time.Minute},
		{[]string{"--host", "0.0.0.0", "--p2p-host", "10.0.0.1"}, "0.0.0.0", "10.0.0.1", 512, 4 << 20, 30 * time.Minute},
		{[]string{"--p2p-host", "0.0.0.0", "--api-max-conns", "9", "--api-page-bytes", "1000", "--api-stream-max-age", "1m"}, "127.0.0.1", "0.0.0.0", 9, 1000, time.Minute},
	} {
		var got *StartOptions
		cmd := NewCmdStart(func(_ context.Context, o *StartOptions) error { got = o; return nil })
		cmd.SetArgs(tc.args)
		cmd.SetErr(io.Discard)
		cmd.SetOut(io.Discard)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		c := got.Config
		if c.API.Host != tc.api || c.Host != tc.p2p || c.API.Limits.MaxConns != tc.maxConns ||
			c.API.Limits.MaxPageBytes != tc.pageBytes || c.API.Limits.StreamMaxAge != tc.streamsAge {
			t.Errorf("%v: api %q p2p %q limits %+v", tc.args, c.API.Host, c.Host, c.API.Limits)
		}
	}
}

// posd check runs without a process: a missing home fails, -o json is JSON.
func TestCheckRun(t *testing.T) {
	var out bytes.Buffer
	err := checkRun(&CheckOptions{Home: t.TempDir() + "/absent", Output: "text", Out: &out})
	if !errors.Is(err, errCheckFailed) || !strings.Contains(out.String(), "FAIL") {
		t.Fatalf("missing home: %v\n%s", err, out.String())
	}
	out.Reset()
	home := t.TempDir()
	os.Chmod(home, 0o700)
	if err := checkRun(&CheckOptions{Home: home, Output: "json", Out: &out}); !errors.Is(err, errCheckFailed) {
		t.Fatalf("home without a key: %v", err) // the key is missing: fail
	}
	var results []map[string]string
	if err := json.Unmarshal(out.Bytes(), &results); err != nil || len(results) == 0 {
		t.Fatalf("-o json: %v\n%s", err, out.String())
	}
	if err := checkRun(&CheckOptions{Home: home, Output: "yaml", Out: &out}); err == nil {
		t.Fatal("-o yaml accepted")
	}
}
