package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon"
	"github.com/poslab/posd/keystore"
)

// chromiumBinary finds a Chromium or Chrome to drive, or "".
func chromiumBinary() string {
	if p := os.Getenv("POSD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// screenshotDir is where the browser test leaves its screenshots:
// $POSD_SCREENSHOT_DIR (CI keeps it as an artifact), else a test temp dir.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("POSD_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestDashboardInBrowser opens the dashboard of a real node in headless
// Chromium, submits a transaction and sees the block that commits it appear
// on the page without a reload, at 1400 px and at 500 px wide.
func TestDashboardInBrowser(t *testing.T) {
	bin := chromiumBinary()
	if bin == "" {
		t.Skip("no chromium binary found (apt-get install chromium, or set POSD_CHROMIUM); .ci/run installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	node, err := daemon.Open(daemon.Config{
		Home: t.TempDir(), NewNetwork: true, Genesis: daemon.DefaultGenesisParams(),
		Host: "127.0.0.1", APIPort: 0, NoNetwork: true, BlockSize: 1, BlockInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer node.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 1000))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	dir := screenshotDir(t)
	err = chromedp.Do(bctx,
		chromedp.EmulateViewport(1400, 1000),
		chromedp.Navigate(node.APIURL()+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#blocks tbody tr[data-height="0"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
	)
	if err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	height := text(t, bctx, `#height`)
	me := text(t, bctx, `#me`)
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.posdNotReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	if height != "0" || me != string(node.Address()) {
		t.Fatalf("page shows height %q and node %q, want 0 and %s", height, me, node.Address())
	}

	k, err := keystore.Generate()
	if err != nil {
		t.Fatal(err)
	}
	tx := chain.Transaction{Type: chain.TxExchange, ChainID: node.API().Genesis().ChainID, To: k.Address(), Amount: 25, Nonce: 1}
	k.SignTx(&tx)
	if _, err := node.API().SubmitTx(tx); err != nil {
		t.Fatal(err)
	}

	err = chromedp.Do(bctx,
		chromedp.WaitVisible(chromedp.CSS(`#blocks tbody tr.me[data-height="1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.staker.me`)),
	)
	if err != nil {
		t.Fatalf("wait for block 1 on the page: %v", err)
	}
	notReloaded, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.posdNotReloaded === true`))
	if err != nil || !notReloaded {
		t.Fatalf("the page reloaded to show the new block (%v)", err)
	}
	if row := text(t, bctx, `#blocks tbody tr[data-height="1"]`); !strings.Contains(row, "this node") || !strings.Contains(row, "1") {
		t.Errorf("block 1 row %q: want the transaction count and the this-node mark", row)
	}
	// The genesis has the heartbeat on: the empty block after the payment
	// is marked as a heartbeat.
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`#blocks tbody tr[data-height="2"] .tag.empty`))); err != nil {
		t.Fatalf("wait for the heartbeat block: %v", err)
	}
	if tag := text(t, bctx, `#blocks tbody tr[data-height="2"] .tag.empty`); tag != "heartbeat" {
		t.Errorf("empty block 2 tagged %q, want heartbeat", tag)
	}
	if forging := text(t, bctx, `#forging`); !strings.HasPrefix(forging, "Forging") {
		t.Errorf("forging state %q, want Forging: …", forging)
	}
	_ = chromedp.Do(bctx, chromedp.Sleep(2500*time.Millisecond)) // the new-row highlight fades

	for _, width := range []int64{1400, 500} {
		if err := chromedp.Do(bctx, chromedp.EmulateViewport(width, 900), chromedp.Sleep(300*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		overflow, err := chromedp.Run(bctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
		if err != nil {
			t.Fatal(err)
		}
		if overflow > 0 {
			t.Errorf("at %d px the page scrolls sideways by %d px", width, overflow)
		}
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot at %d px: %v", width, err)
		}
		path := filepath.Join(dir, fmt.Sprintf("dashboard-%d.png", width))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
}

// text is the text of the first element matching the CSS selector sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}
