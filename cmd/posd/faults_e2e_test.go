package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/keystore"
)

// Storage, key and exposure faults on real posd processes.

// refusedStart runs `posd start` in home and expects it to exit 1 at once
// with every one of wants in its output.
func refusedStart(t *testing.T, home string, env []string, args []string, wants ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := append([]string{"start", "--home", home, "--api-port", fmt.Sprint(freePort(t)), "--p2p-port", fmt.Sprint(freePort(t)), "--mdns=false"}, args...)
	cmd := exec.CommandContext(ctx, posdBin, all...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("posd %v did not exit: it started although it should refuse\n%s", args, out)
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("posd exited %d (%v), want 1\n%s", code, err, out)
	}
	for _, w := range wants {
		if !strings.Contains(string(out), w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
	return string(out)
}

// runCheck runs `posd check` and returns its exit code and output.
func runCheck(t *testing.T, home string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(posdBin, append([]string{"check", "--home", home}, args...)...)
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.ExitCode(), string(out)
}

// newChainHome starts a genesis node, commits a transaction and stops it.
func newChainHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	p := startPosd(t, home, freePort(t), "--genesis", "--chain-id", "faults")
	k, _ := keystore.Generate()
	tx := p.sign(k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 10})
	p.submit(tx)
	p.waitCommitted(tx.ID())
	p.stop()
	return home
}

// F1, F2 and posd check: a truncated or emptied chain.db is refused at
// start and failed by posd check, which passes the intact home.
func TestDamagedChainStopsLoudly(t *testing.T) {
	home := newChainHome(t)
	if code, out := runCheck(t, home); code != 0 || !strings.Contains(out, "state of") {
		t.Fatalf("posd check of a good home: exit %d\n%s", code, out)
	}
	code, out := runCheck(t, home, "-o", "json")
	var results []map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &results) != nil || len(results) < 4 {
		t.Fatalf("posd check -o json: exit %d\n%s", code, out)
	}
	db := filepath.Join(home, "chain.db")
	orig, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	// F1: truncated to just under half. bbolt doubles the file as it
	// grows, so its pages in use reach past half of it, or to half
	// exactly (a small chain of store format 5 did): one byte less
	// always cuts a page in use.
	if err := os.WriteFile(db, orig[:len(orig)/2-1], 0o600); err != nil {
		t.Fatal(err)
	}
	refusedStart(t, home, nil, nil, "truncated", "posd check")
	if code, out := runCheck(t, home); code != 1 || !strings.Contains(out, "truncated") {
		t.Fatalf("posd check of a truncated chain.db: exit %d\n%s", code, out)
	}
	// F2: truncated to 0 bytes: no new chain is started in it.
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	refusedStart(t, home, nil, []string{"--genesis"}, "empty", "restore")
	if fi, _ := os.Stat(db); fi.Size() != 0 {
		t.Fatal("the refused start wrote a new chain into chain.db")
	}
	if code, out := runCheck(t, home); code != 1 || !strings.Contains(out, "0 bytes") {
		t.Fatalf("posd check of an empty chain.db: exit %d\n%s", code, out)
	}
	// Restored, the node starts again at its height.
	if err := os.WriteFile(db, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startPosd(t, home, freePort(t))
	if h := p.status().Height; h < 1 {
		t.Fatalf("restored node at height %d", h)
	}
}

// F3, F4, F5 and F9 at start.
func TestHomeFaultsRefused(t *testing.T) {
	home := newChainHome(t)
	keyPath := filepath.Join(home, "node_key.pem")
	key, err := keystore.Load(keyPath, nil)
	if err != nil {
		t.Fatal(err)
	}

	// F9: an edited genesis.json.
	gpath := filepath.Join(home, "genesis.json")
	g, _ := os.ReadFile(gpath)
	edited := strings.Replace(string(g), `"faults"`, `"other"`, 1)
	os.WriteFile(gpath, []byte(edited), 0o644)
	refusedStart(t, home, nil, nil, "genesis.json", "differs from the genesis of the chain")
	if code, out := runCheck(t, home); code != 1 || !strings.Contains(out, "differs") {
		t.Fatalf("posd check with an edited genesis: exit %d\n%s", code, out)
	}
	os.WriteFile(gpath, g, 0o644)

	// F3: the key vanished.
	os.Rename(keyPath, keyPath+".bak")
	refusedStart(t, home, nil, nil, "node key missing", "--new-key")
	if _, err := os.Stat(keyPath); err == nil {
		t.Fatal("a refused start made a key")
	}

	// F4: the key encrypted at the default path, the passphrase in the variable.
	if err := keystore.Save(keyPath, key, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	refusedStart(t, home, []string{"POSD_KEY_PASSPHRASE="}, nil, "POSD_KEY_PASSPHRASE")
	port := freePort(t)
	cmd := exec.Command(posdBin, "start", "--home", home, "--api-port", fmt.Sprint(port), "--p2p-port", fmt.Sprint(freePort(t)), "--mdns=false")
	cmd.Env = append(os.Environ(), "POSD_KEY_PASSPHRASE=pw")
	// F5: loose permissions are warned about.
	os.Chmod(home, 0o755)
	os.Chmod(keyPath, 0o644)
	os.Chmod(filepath.Join(home, "api.token"), 0o644)
	p := runProc(t, cmd, home, fmt.Sprintf("http://127.0.0.1:%d", port))
	if a := p.status().Address; a != string(key.Address()) {
		t.Fatalf("the node runs as %s, want %s", a, key.Address())
	}
	for _, w := range []string{"loose permissions: home", "loose permissions: node key", "loose permissions: admin token"} {
		waitFor(t, 10*time.Second, w, func() bool { return strings.Contains(p.log.String(), w) })
	}
	p.stop()
	if code, out := runCheck(t, home); code != 1 || !strings.Contains(out, "warn") {
		// Without the passphrase the key check fails; the permissions warn.
		t.Fatalf("posd check without the passphrase: exit %d\n%s", code, out)
	}

	// F3 again: --new-key is the way out.
	os.Remove(keyPath)
	p = startPosd(t, home, freePort(t), "--new-key")
	if a := p.status().Address; a == string(key.Address()) {
		t.Fatal("--new-key kept the old address")
	}
}

// F6: while the disk refuses writes (a file-size limit set on the running
// process, as a full disk does), /healthz answers 503 "unhealthy"; once
// writes succeed again the pending block commits and health returns.
func TestCommitFailureMakesUnhealthy(t *testing.T) {
	home := t.TempDir()
	p := startPosd(t, home, freePort(t), "--genesis", "--chain-id", "diskfull")
	pid := p.cmd.Process.Pid
	k, _ := keystore.Generate()
	tx := p.sign(k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 10})
	p.submit(tx)
	p.waitCommitted(tx.ID())

	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		t.Skipf("prlimit: %v", err)
	}
	lim := unix.Rlimit{Cur: 4096, Max: old.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &lim, nil); err != nil {
		t.Skipf("prlimit: %v", err)
	}
	health := func() (int, string) {
		resp, err := http.Get(p.url + "/healthz")
		if err != nil {
			t.Fatalf("healthz: %v", err)
		}
		defer resp.Body.Close()
		var body struct{ Status, Error string }
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Status + " " + body.Error
	}
	tx2 := p.sign(k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 20})
	p.submit(tx2)
	waitFor(t, 30*time.Second, "healthz to turn unhealthy", func() bool {
		code, _ := health()
		return code == 503
	})
	_, msg := health()
	if !strings.Contains(msg, "unhealthy") || !strings.Contains(msg, "commits fail") || !strings.Contains(msg, "file too large") {
		t.Fatalf("unhealthy answer %q", msg)
	}
	t.Logf("while writes fail: %s", msg)
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &old, nil); err != nil {
		t.Fatal(err)
	}
	p.waitCommitted(tx2.ID())
	waitFor(t, 30*time.Second, "healthz to recover", func() bool {
		code, _ := health()
		return code == 200
	})
}

// H1: --host is a deprecated alias; on loopback a foreign Host header is
// refused; with TLS the API is HTTPS only. (Tests bind loopback only: the
// warning beyond loopback is daemon's TestExposureWarning.)
func TestExposure(t *testing.T) {
	home := t.TempDir()
	port := freePort(t)
	p := startPosd(t, home, port, "--genesis", "--host", "127.0.0.1")
	waitFor(t, 10*time.Second, "the deprecation notice", func() bool {
		return strings.Contains(p.log.String(), "--host has been deprecated")
	})
	p.stop()

	// Loopback: the DNS-rebinding guard.
	p = startPosd(t, home, port, "--api-host", "127.0.0.1")
	if strings.Contains(p.log.String(), "beyond loopback") {
		t.Fatal("warned about a loopback API")
	}
	req, _ := http.NewRequest("GET", p.url+"/v1/status", nil)
	req.Host = "attacker.example:5001"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 403 || body.Error.Code != "host_not_allowed" {
		t.Fatalf("foreign Host: %d %q", resp.StatusCode, body.Error.Code)
	}
	p.stop()

	// TLS.
	cert, keyPEM := selfSigned(t)
	certFile, keyFile := filepath.Join(home, "cert.pem"), filepath.Join(home, "key.pem")
	os.WriteFile(certFile, cert, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	cmd := exec.Command(posdBin, "start", "--home", home, "--api-port", fmt.Sprint(port), "--p2p-port", fmt.Sprint(freePort(t)),
		"--mdns=false", "--api-tls-cert", certFile, "--api-tls-key", keyFile)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cert)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	waitFor(t, 30*time.Second, "the HTTPS API", func() bool {
		resp, err := hc.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port)); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on the TLS port")
		}
	}
}

// selfSigned makes a certificate for 127.0.0.1.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "posd test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(priv)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
