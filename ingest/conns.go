package ingest

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// connGuard is the public listener's connection policy, in front of
// fasthttp's worker pool, where each connection holds a worker for as long
// as it is open (keep-alive included):
//
//   - per client, at most MaxConnsPerIP connections, counted per IPv4
//     address or IPv6 /64 like the rate limits (fasthttp's own cap counts
//     exact addresses, so one /64 could take every slot);
//   - past 7/8 of MaxConns, the longest-idle keep-alive connections are
//     closed to make room, so idle connections cannot starve new requests
//     (without it, MaxConns idle connections, each sending one request per
//     IdleTimeout, made every new client get 503).
//
// A proxy or load balancer in front should still cap connections per
// client: behind it every connection has the proxy's address.
type connGuard struct {
	net.Listener
	perKey    int // 0 = unlimited
	highWater int // evict idle connections above this many open
	lowWater  int // ... down to this many, so the scan is rare
	m         *metrics

	mu    sync.Mutex
	open  int
	byKey map[netip.Addr]int
	idle  map[*guardedConn]time.Time // connections between requests, since when
}

func newConnGuard(ln net.Listener, maxConns, perKey int, m *metrics) *connGuard {
	high := maxConns - maxConns/8
	return &connGuard{Listener: ln, perKey: perKey, highWater: high, lowWater: high - max(1, maxConns/16),
		m: m, byKey: map[netip.Addr]int{}, idle: map[*guardedConn]time.Time{}}
}

// tooManyConns is answered, unread, to a client over its connection cap.
const tooManyConns = "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n"

func (g *connGuard) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := connKey(c)
		g.mu.Lock()
		if g.perKey > 0 && g.byKey[key] >= g.perKey {
			g.mu.Unlock()
			g.m.connsRefused.Inc()
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(tooManyConns))
			_ = c.Close()
			continue
		}
		g.byKey[key]++
		g.open++
		var evict []*guardedConn
		if g.open > g.highWater && len(g.idle) > 0 {
			evict = g.longestIdle(g.open - g.lowWater)
		}
		g.mu.Unlock()
		for _, e := range evict {
			// Closing makes the worker's wait for the next request fail,
			// which frees it; an idle connection has no request to lose.
			_ = e.Conn.Close()
		}
		g.m.idleConnsClosed.Add(float64(len(evict)))
		return &guardedConn{Conn: c, g: g, key: key}, nil
	}
}

// longestIdle takes up to n idle connections out of the idle set, longest
// idle first. Called with g.mu held.
func (g *connGuard) longestIdle(n int) []*guardedConn {
	out := make([]*guardedConn, 0, min(n, len(g.idle)))
	for len(out) < n && len(g.idle) > 0 {
		var oldest *guardedConn
		var since time.Time
		for c, t := range g.idle {
			if oldest == nil || t.Before(since) {
				oldest, since = c, t
			}
		}
		delete(g.idle, oldest)
		out = append(out, oldest)
	}
	return out
}

// connState is fasthttp's Server.ConnState hook.
func (g *connGuard) connState(c net.Conn, st fasthttp.ConnState) {
	gc, ok := c.(*guardedConn)
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if st == fasthttp.StateIdle && !gc.closed {
		g.idle[gc] = time.Now()
	} else {
		delete(g.idle, gc)
	}
}

func (g *connGuard) release(gc *guardedConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gc.closed {
		return
	}
	gc.closed = true
	delete(g.idle, gc)
	g.open--
	if g.byKey[gc.key]--; g.byKey[gc.key] <= 0 {
		delete(g.byKey, gc.key)
	}
}

// connKey is the address a connection is counted against: the peer's
// IPv4 address or IPv6 /64 (rateKey).
func connKey(c net.Conn) netip.Addr {
	var a netip.Addr
	if t, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		a, _ = netip.AddrFromSlice(t.IP)
	}
	return rateKey(a)
}

// guardedConn releases its slot in the guard when closed (by fasthttp, or
// by an eviction).
type guardedConn struct {
	net.Conn
	g      *connGuard
	key    netip.Addr
	closed bool // under g.mu
}

func (c *guardedConn) Close() error {
	c.g.release(c)
	return c.Conn.Close()
}
