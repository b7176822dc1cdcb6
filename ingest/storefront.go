package ingest

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"purchasesync/schemas"
)

var errRegistryNotLoaded = errors.New("site registry not loaded yet; retry later")

// maxUserAgent bounds the user-agent header copied onto a record.
const maxUserAgent = 512

// storefront handles POST /v1/sites/{site}/purchases: the purchase event of
// the storefront JavaScript, answered 202 once Kafka holds it. Checks run
// cheapest first, and the per-IP limit before the site lookup so that
// probing for site names costs the prober its own tokens.
func (s *Server) storefront(ctx *fasthttp.RequestCtx, slug string) error {
	receivedAt := time.Now()
	if err := checkAnnounced(ctx, s.cfg.MaxStorefrontBodyBytes); err != nil {
		return err
	}
	ip := s.clientIP(ctx)
	spent, err := s.chargeClient(ip, receivedAt)
	if err != nil {
		return err
	}
	site, err := s.lookupSite(slug)
	if err != nil {
		return err
	}
	origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	if len(origin) > 0 && allowedOrigin(site, origin) {
		// Set before any refusal below, so the page can read a 400's body.
		ctx.Response.Header.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, origin)
		ctx.Response.Header.Set(fasthttp.HeaderVary, "Origin")
	}
	// Over its rate, a site refuses only heavy clients (lightSpent): the
	// flood is shed, the shoppers' one event per purchase still passes.
	if ok, wait := s.siteLimit.allow(site.Site, receivedAt); !ok && spent > lightSpent {
		s.m.rateLimited.WithLabelValues("site").Inc()
		return &StatusError{Code: fasthttp.StatusTooManyRequests, RetryAfter: wait, Err: errors.New("too many requests for this site")}
	}
	if !isJSON(ctx.Request.Header.ContentType()) {
		return statusErrorf(fasthttp.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	buf := s.bodies.get()
	defer s.bodies.put(buf)
	body, err := readBody(ctx, s.cfg.MaxStorefrontBodyBytes, buf)
	if err != nil {
		return err
	}
	s.m.bodyBytes.WithLabelValues(endpointStorefront).Observe(float64(len(body)))
	key, err := storefrontKey(site, body)
	if err != nil {
		return err
	}
	ua := ctx.Request.Header.UserAgent()
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	var ipBuf [64]byte
	hs, n := schemas.StorefrontHeaderList[kgo.RecordHeader](&schemas.StorefrontHeaders{
		Site:      []byte(site.Site),
		ClientIP:  ip.AppendTo(ipBuf[:0]),
		UserAgent: ua,
		Origin:    origin,
	})
	rec := newRecord(s.topics[tStorefront], key, body, receivedAt, hs[:n])
	if err := s.produce(out{rec, tStorefront}); err != nil {
		return err
	}
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"status":"accepted"}` + "\n")
	return nil
}

// chargeClient takes a token from the client's bucket (IPv4 address or
// IPv6 /64) and, for IPv6, from its /48's; it returns how many tokens of
// its burst the client has spent, or a 429.
func (s *Server) chargeClient(ip netip.Addr, now time.Time) (float64, error) {
	ok, wait, spent := s.ipLimit.take(rateKey(ip), now)
	if ok {
		if n, v6 := netKey(ip); v6 {
			ok, wait = s.netLimit.allow(n, now)
		}
	}
	if !ok {
		s.m.rateLimited.WithLabelValues("ip").Inc()
		return 0, &StatusError{Code: fasthttp.StatusTooManyRequests, RetryAfter: wait, Err: errors.New("too many requests from this address")}
	}
	return spent, nil
}

// preflight answers the browser's CORS preflight (OPTIONS) for a site: only
// pages on the site's shop domain or its custom domains may post events.
func (s *Server) preflight(ctx *fasthttp.RequestCtx, slug string) error {
	// Charged like an event, before the lookup: probing for site names
	// costs the prober its own tokens.
	if _, err := s.chargeClient(s.clientIP(ctx), time.Now()); err != nil {
		return err
	}
	site, err := s.lookupSite(slug)
	if err != nil {
		return err
	}
	origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	if len(origin) == 0 || !allowedOrigin(site, origin) {
		return statusErrorf(fasthttp.StatusForbidden, "origin not allowed for site %s", site.Site)
	}
	h := &ctx.Response.Header
	h.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, origin)
	h.Set(fasthttp.HeaderAccessControlAllowMethods, "POST, OPTIONS")
	h.Set(fasthttp.HeaderAccessControlAllowHeaders, "Content-Type")
	h.Set(fasthttp.HeaderAccessControlMaxAge, "7200") // Chrome's cap
	h.Set(fasthttp.HeaderVary, "Origin")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}

// lookupSite resolves a slug; before the registry is loaded no answer about
// a site is trustworthy, so that is a 503, not a 404.
func (s *Server) lookupSite(slug string) (schemas.Site, error) {
	if !s.sites.Ready() {
		return schemas.Site{}, &StatusError{Code: fasthttp.StatusServiceUnavailable, RetryAfter: s.cfg.RetryAfter, Err: errRegistryNotLoaded}
	}
	site, ok := s.sites.Get(slug)
	if !ok {
		return schemas.Site{}, statusErrorf(fasthttp.StatusNotFound, "unknown site %q", slug)
	}
	return site, nil
}

// storefrontKey validates a storefront event and returns its record key,
// site/order_number with the order number normalized by the site's
// order_key mode. Errors are 400s naming the first bad field.
func storefrontKey(site schemas.Site, body []byte) (string, error) {
	p, err := schemas.ParseStorefrontPurchase(body)
	if err != nil {
		var fe *schemas.FieldError
		if errors.As(err, &fe) {
			return "", &StatusError{Code: fasthttp.StatusBadRequest, Field: fe.Field, Err: errors.New(fe.Reason)}
		}
		return "", &StatusError{Code: fasthttp.StatusBadRequest, Field: "body", Err: err}
	}
	on := p.OrderNumberFor(site.OrderKey)
	if on == "" {
		return "", &StatusError{Code: fasthttp.StatusBadRequest, Field: "purchase.order_number", Err: errors.New("is empty once normalized")}
	}
	return schemas.Key(site.Site, on), nil
}

// clientIP is the request's client address (see clientIP in clientip.go).
func (s *Server) clientIP(ctx *fasthttp.RequestCtx) netip.Addr {
	var peer netip.Addr
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		peer, _ = netip.AddrFromSlice(a.IP)
	}
	if len(s.cfg.TrustedProxies) == 0 {
		return peer.Unmap()
	}
	return clientIP(peer, ctx.Request.Header.PeekAll(fasthttp.HeaderXForwardedFor), s.cfg.TrustedProxies)
}

// isJSON accepts application/json with optional parameters (charset).
func isJSON(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return bytes.EqualFold(bytes.TrimSpace(ct), []byte("application/json"))
}

// allowedOrigin reports whether a page at origin ("https://host[:port]") may
// post events for site: its host must be the shop domain or one of the
// site's custom domains. Only https pages qualify, as storefronts are.
func allowedOrigin(site schemas.Site, origin []byte) bool {
	const scheme = "https://"
	if len(origin) <= len(scheme) || !bytes.EqualFold(origin[:len(scheme)], []byte(scheme)) {
		return false
	}
	host := string(origin[len(scheme):])
	if strings.EqualFold(host, site.ShopDomain) {
		return true
	}
	for _, d := range site.CustomDomains {
		if strings.EqualFold(host, normalizeDomain(d)) {
			return true
		}
	}
	return false
}

// normalizeDomain accepts a custom domain written as a host or as an origin
// or URL ("shop.example.com", "https://shop.example.com/").
func normalizeDomain(d string) string {
	d = strings.TrimSpace(d)
	if i := strings.Index(d, "://"); i >= 0 {
		d = d[i+3:]
	}
	if i := strings.IndexByte(d, '/'); i >= 0 {
		d = d[:i]
	}
	return d
}
