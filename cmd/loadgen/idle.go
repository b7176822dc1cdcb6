package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// scenarioIdle opens -concurrency connections that each send one request's
// headers and then nothing: with -idle.announce 0 a GET /healthz answered
// and kept alive (what idle keep-alive connections cost), otherwise a POST
// announcing that many body bytes that never come, spread over the
// webhook, storefront, health and an unknown path (what a client costs
// that makes the server wait for a body; the security review's H2). It
// samples the RSS of -idle.pid (the ingest) before and for -idle.hold after
// the connections are open, and prints the peak growth.
//
//	loadgen -scenario idle -concurrency 1000 -idle.announce 983040 -idle.pid $(pgrep -nf 'purchasesync ingest')
//
// deploy/local/bench-idle-conns.sh runs both kinds against fresh ingests.
const scenarioIdle = "idle"

// idlePaths are where announcing connections go, round robin.
var idlePaths = []string{"/webhooks/shopify", "/v1/sites/demo/purchases", "/healthz", "/nosuch"}

func runIdle(ctx context.Context, o options, stdout io.Writer) error {
	if o.idlePID <= 0 {
		return errors.New("-scenario idle needs -idle.pid, the ingest's process id, to read its RSS")
	}
	u, err := url.Parse(o.target)
	if err != nil {
		return err
	}
	before, err := rssBytes(o.idlePID)
	if err != nil {
		return err
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var d net.Dialer
	for i := range o.concurrency {
		c, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
		conns = append(conns, c)
		if o.idleAnnounce == 0 {
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", u.Host)
			// Read the answer so the connection is idle, not mid-request.
			if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
				return fmt.Errorf("connection %d: no answer to GET /healthz: %w", i+1, err)
			}
			continue
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			idlePaths[i%len(idlePaths)], u.Host, o.idleAnnounce)
	}
	peak := before
	deadline := time.Now().Add(o.idleHold)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		if r, err := rssBytes(o.idlePID); err == nil && r > peak {
			peak = r
		}
	}
	const mib = 1 << 20
	kind := "idle keep-alive connections (GET /healthz answered)"
	if o.idleAnnounce > 0 {
		kind = fmt.Sprintf("connections announcing %d body bytes and sending none", o.idleAnnounce)
	}
	fmt.Fprintf(stdout, "%d %s: ingest RSS %.1f MiB before, peak %.1f MiB within %s: +%.1f MiB (%.1f KiB per connection)\n",
		o.concurrency, kind, float64(before)/mib, float64(peak)/mib, o.idleHold, float64(peak-before)/mib, float64(peak-before)/1024/float64(o.concurrency))
	return nil
}

// rssBytes reads a process's resident set size from /proc.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("cannot read the RSS of -idle.pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("cannot parse VmRSS %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
