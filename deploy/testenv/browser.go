package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumHowTo says how to get the browser the page tests drive.
const chromiumHowTo = "install Debian's chromium (deploy/local/test.sh does: apt-get install chromium) or set PURCHASESYNC_CHROMIUM to a Chromium or Chrome binary"

// Browser starts a headless Chromium (Debian's, or PURCHASESYNC_CHROMIUM)
// driven over the DevTools protocol, and returns a context whose actions
// run in one tab; it is closed when the test ends. Without a browser the
// test fails under PURCHASESYNC_FUNCTIONAL_TESTS=1 and skips otherwise.
func Browser(t testing.TB) context.Context {
	t.Helper()
	bin := os.Getenv("PURCHASESYNC_CHROMIUM")
	if bin == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				bin = p
				break
			}
		}
	}
	if bin == "" {
		if Required() {
			t.Fatalf("a browser is required (PURCHASESYNC_FUNCTIONAL_TESTS=1) but none was found: %s", chromiumHowTo)
		}
		t.Skipf("no browser: %s", chromiumHowTo)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Sleep(0)); err != nil { // starts the browser
		t.Fatalf("cannot start %s: %v", bin, err)
	}
	return ctx
}

// ScreenshotDir is where page tests write their screenshots for people to
// look at: deploy/local/.state/screenshots/<test>/ (git-ignored), emptied
// when the test starts.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(), "deploy", "local", ".state", "screenshots", regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(t.Name(), "_"))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Screenshot writes the whole page as dir/<step>.png and returns its path.
func Screenshot(t testing.TB, ctx context.Context, dir, step string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", step, err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s.png", step))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}
