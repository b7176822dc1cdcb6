package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"purchasesync/ingest/shopify"
	"purchasesync/schemas"
)

// sender sends one run's requests and tallies the answers.
type sender struct {
	cfg      Config
	webhooks *http.Client // Shopify's: a few kept-alive connections from one address
	rr       atomic.Uint64

	mu      sync.Mutex
	answers map[string]map[string]int // kind → status or error class → count
}

func newSender(cfg Config) *sender {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 128, IdleConnTimeout: 30 * time.Second}
	return &sender{cfg: cfg, webhooks: &http.Client{Transport: tr, Timeout: cfg.Timeout}, answers: map[string]map[string]int{}}
}

// target picks the next ingest, round robin.
func (s *sender) target() string {
	return strings.TrimSuffix(s.cfg.Targets[s.rr.Add(1)%uint64(len(s.cfg.Targets))], "/")
}

// shopper is the HTTP client of order n's browser: with SourceAddrs, its
// connections come from its own loopback address (127.1.0.0 and up; the
// whole 127/8 is local on Linux), one connection per event as a fresh
// page's would be.
func (s *sender) shopper(n int) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	if s.cfg.SourceAddrs {
		ip := net.IPv4(127, byte(1+(n>>16)%254), byte(n>>8), byte(n))
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: s.cfg.Timeout}
		tr.DialContext = d.DialContext
	}
	return &http.Client{Transport: tr, Timeout: s.cfg.Timeout}
}

// post sends one request and records its answer under kind.
func (s *sender) post(ctx context.Context, c *http.Client, kind, path string, hdr http.Header, body []byte) answer {
	var a answer
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.target()+path, bytes.NewReader(body))
	if err != nil {
		panic("BUG: " + err.Error())
	}
	req.Header = hdr.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	a.end = time.Now()
	class := ""
	if err != nil {
		class = errClass(err)
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		a.code, class = resp.StatusCode, fmt.Sprint(resp.StatusCode)
	}
	s.mu.Lock()
	if s.answers[kind] == nil {
		s.answers[kind] = map[string]int{}
	}
	s.answers[kind][class]++
	s.mu.Unlock()
	return a
}

func errClass(err error) string {
	var ne net.Error
	switch {
	case strings.Contains(err.Error(), "connection refused"):
		return "refused"
	case strings.Contains(err.Error(), "connection reset"):
		return "reset"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "EOF"):
		return "eof"
	}
	return "error"
}

// webhookHeader is what Shopify sends with an orders/create delivery.
func (s *sender) webhookHeader(o *order, webhookID string, secret string, body []byte) http.Header {
	h := http.Header{}
	h.Set("X-Shopify-Topic", schemas.WebhookOrdersCreate)
	h.Set("X-Shopify-Hmac-Sha256", shopify.Sign([]byte(secret), body))
	h.Set("X-Shopify-Shop-Domain", o.site+".myshopify.com")
	h.Set("X-Shopify-API-Version", "2025-10")
	h.Set("X-Shopify-Webhook-Id", webhookID)
	h.Set("X-Shopify-Event-Id", "ev-"+webhookID)
	h.Set("X-Shopify-Triggered-At", time.Now().UTC().Format(time.RFC3339Nano))
	return h
}

// deliver delivers a webhook as Shopify does: until a 200, with growing
// waits (1 s doubling to 10 s; Shopify's own go on for hours), each try to
// the next ingest, and gives up after RetryFor.
func (s *sender) deliver(ctx context.Context, o *order, webhookID string) (acked bool) {
	hdr := s.webhookHeader(o, webhookID, s.cfg.Secret, o.webhook)
	deadline := time.Now().Add(s.cfg.RetryFor)
	wait := time.Second
	for {
		a := s.post(ctx, s.webhooks, "webhook", "/webhooks/shopify", hdr, o.webhook)
		o.wh = append(o.wh, a)
		if a.code == http.StatusOK {
			return true
		}
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return false
		}
		sleep(ctx, wait)
		wait = min(2*wait, 10*time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// play runs an order's scenario.
func (s *sender) play(ctx context.Context, o *order, redeliveries int) {
	shopper := s.shopper(o.n)
	sfPath := "/v1/sites/" + o.site + "/purchases"
	sfHeader := http.Header{"Origin": {"https://" + o.site + ".myshopify.com"}, "User-Agent": {"Mozilla/5.0 (ledger check)"}}
	for _, st := range o.sc.steps {
		switch st {
		case stepStorefront, stepReload:
			o.sf = append(o.sf, s.post(ctx, shopper, "storefront", sfPath, sfHeader, o.storefront))
		case stepMalformed:
			o.malformedAns = append(o.malformedAns, s.post(ctx, shopper, "storefront-malformed", sfPath, sfHeader, o.malformed))
		case stepWebhook:
			if !s.deliver(ctx, o, o.webhookID) {
				o.whGaveUp = true
				continue
			}
			o.whAcked = true
			// Redeliveries of the same webhook id, as when Shopify did not
			// see the 200 within its 5 s.
			for range redeliveries {
				s.deliver(ctx, o, o.webhookID)
			}
		case stepDuplicate:
			if s.deliver(ctx, o, o.webhookID+"-dup") {
				o.whAcked = true
			}
		case stepForged:
			hdr := s.webhookHeader(o, o.webhookID, "not-"+s.cfg.Secret, o.webhook)
			o.forged = append(o.forged, s.post(ctx, s.webhooks, "webhook-forged", "/webhooks/shopify", hdr, o.webhook))
		case stepInGrace:
			sleep(ctx, s.cfg.Grace/5)
		case stepPastGrace:
			sleep(ctx, s.cfg.Grace+3*time.Second)
		}
	}
}

// answerTable is the tally as "kind: 200×n, 503×m" lines.
func (s *sender) answerTable() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lines []string
	for _, kind := range []string{"webhook", "webhook-forged", "storefront", "storefront-malformed"} {
		m := s.answers[kind]
		if len(m) == 0 {
			continue
		}
		lines = append(lines, fmt.Sprintf("%-21s %s", kind, fmtCounts(m)))
	}
	return lines
}

func fmtCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
