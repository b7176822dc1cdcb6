package page

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"purchasesync/deploy/testenv"
)

// TestBrowserKeyboard: in a real browser, the page renders with its own
// stylesheet, and a merchant using only the keyboard reaches the switch
// and turns Purchase Syncing on.
func TestBrowserKeyboard(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Browser(t)
	dir := testenv.ScreenshotDir(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/app?"+url.Values{"id_token": {"valid:" + shop}}.Encode()),
		chromedp.WaitVisible(chromedp.CSS("#syncing-switch"))); err != nil {
		t.Fatal(err)
	}
	// The stylesheet applied: cards are white on Shopify's grey.
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`))
	if err != nil || bg != "rgb(241, 241, 241)" {
		t.Errorf("body background %q (%v): the stylesheet did not load", bg, err)
	}
	testenv.Screenshot(t, ctx, dir, "1-off")
	// Tab until the switch has the focus, then Enter.
	for i := 0; i < 10; i++ {
		id, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`))
		if id == "syncing-switch" {
			break
		}
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS(".banner-success"))); err != nil {
		t.Fatalf("keyboard switch: %v", err)
	}
	text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".banner-success")))
	if !strings.Contains(text, "Purchase Syncing is on") || strings.Join(e.sw.calls, ",") != "acme=true" {
		t.Fatalf("after Enter on the switch: %q, calls %v", text, e.sw.calls)
	}
	testenv.Screenshot(t, ctx, dir, "2-on")
}
