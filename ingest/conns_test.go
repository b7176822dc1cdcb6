package ingest

import (
	"bufio"
	"fmt"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"net"
	"strings"
	"testing"
	"time"
)

// TestIdleConnectionsDoNotStarveWorkers: with every connection slot held
// by idle keep-alive connections, a new client is still served (M3 of the
// security review: it got 503 "Server.Concurrency limit exceeded").
func TestIdleConnectionsDoNotStarveWorkers(t *testing.T) {
	const maxConns = 20
	e := startInproc(t, func(c *Config) { c.MaxConns = maxConns; c.IdleTimeout = time.Minute })
	for i := range maxConns {
		c, err := e.ln.DialWithLocalAddr(&net.TCPAddr{IP: net.IPv4(198, 51, 100, byte(i+1)), Port: 40000})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
			t.Fatalf("idle connection %d: %q %v", i, line, err)
		}
	}
	time.Sleep(50 * time.Millisecond) // the last ones are idle now
	for i := range 3 {
		r := e.do(t, req{method: "GET", path: "/healthz", from: fmt.Sprintf("203.0.113.%d", i+1)})
		if r.code != 200 {
			t.Errorf("new client %d with %d idle connections open: %d %s, want 200", i, maxConns, r.code, r.body)
		}
	}
	if v := testutil.ToFloat64(e.srv.m.idleConnsClosed); v < 1 {
		t.Errorf("idle_connections_closed_total = %v, want > 0", v)
	}
}

// TestConnectionCapPerIPv6Prefix: the per-client connection cap counts an
// IPv6 /64 as one client, as the rate limits do (M3: fasthttp counted exact
// addresses, so one /64 could open every slot).
func TestConnectionCapPerIPv6Prefix(t *testing.T) {
	e := startInproc(t, func(c *Config) { c.MaxConnsPerIP = 3 })
	dial := func(ip string) string {
		t.Helper()
		c, err := e.ln.DialWithLocalAddr(&net.TCPAddr{IP: net.ParseIP(ip), Port: 40000})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}
	for i := range 3 {
		if got := dial(fmt.Sprintf("2001:db8:1:2::%x", i+1)); !strings.Contains(got, "200") {
			t.Fatalf("connection %d of the /64: %q, want 200", i+1, got)
		}
	}
	if got := dial("2001:db8:1:2:ffff::9"); !strings.Contains(got, "429") {
		t.Errorf("4th connection from the same /64: %q, want 429", got)
	}
	if got := dial("2001:db8:1:3::1"); !strings.Contains(got, "200") {
		t.Errorf("another /64: %q, want 200", got)
	}
	if v := testutil.ToFloat64(e.srv.m.connsRefused); v != 1 {
		t.Errorf("connections_refused_total = %v, want 1", v)
	}
}

// TestIPv6NetworkLimit: the /64s of one /48 share a bucket of 16 clients'
// rate, so a residential /56 (256 /64s) cannot send 256 times the
// per-client rate (M2 of the security review).
func TestIPv6NetworkLimit(t *testing.T) {
	e := startInproc(t, func(c *Config) { c.IPRate, c.IPBurst = 1, 2; c.SiteRate = 0 })
	body := []byte(`{"purchase":{"order_number":"1","subtotal":"1"},"customer":{"email":"a@b.example"}}`)
	accepted := 0
	for i := range 40 { // 20 /64s of 2001:db8:7:ff00::/56, two events each
		r := storefrontReq("acme", body)
		r.from = fmt.Sprintf("2001:db8:7:ff%02x::1", i/2)
		if e.do(t, r).code == 202 {
			accepted++
		}
	}
	if accepted > 2*netFactor+1 {
		t.Errorf("%d of 40 events from one /48 accepted, want at most its burst of %d", accepted, 2*netFactor)
	}
	r := storefrontReq("acme", body)
	r.from = "2001:db8:8::1" // another /48
	if code := e.do(t, r).code; code != 202 {
		t.Errorf("another /48: %d, want 202", code)
	}
}

// TestPreflightIsRateLimited: CORS preflights charge the per-IP bucket, so
// site slugs cannot be enumerated for free (L5 of the security review).
func TestPreflightIsRateLimited(t *testing.T) {
	e := startInproc(t, func(c *Config) { c.IPRate, c.IPBurst = 1, 20 })
	limited := 0
	for i := range 60 {
		r := req{method: "OPTIONS", path: fmt.Sprintf("/v1/sites/probe%d/purchases", i), from: "198.51.100.77",
			headers: map[string]string{"Origin": "https://acme.myshopify.com"}}
		if e.do(t, r).code == 429 {
			limited++
		}
	}
	if limited < 30 {
		t.Errorf("%d of 60 preflight probes from one address got 429, want most of those past the burst of 20", limited)
	}
}
