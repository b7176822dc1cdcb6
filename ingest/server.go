package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"purchasesync/ingest/shopify"
	"purchasesync/schemas"
)

// Sites is what the ingest needs from the site registry
// (processors/sites.Registry satisfies it). Implementations must be safe
// for concurrent use and fast: they are called on every request.
type Sites interface {
	// Get returns a site by slug.
	Get(site string) (schemas.Site, bool)
	// ByShop returns the site linked to a normalized shop domain.
	ByShop(domain string) (schemas.Site, bool)
	// Ready reports whether the registry has been read up to its end once;
	// before that an absent site may just not be loaded yet.
	Ready() bool
}

// Deps are the ingest's collaborators.
type Deps struct {
	// Client produces every record. It must be configured with acks=all and
	// idempotence, and Kafka's default (murmur2) key partitioner, so that
	// both raw topics put a purchase's events in the same partition. Run
	// flushes it before returning; the caller closes it after Run returns.
	Client *kgo.Client
	// Sites resolves sites and shops.
	Sites Sites
	// Registerer receives the metrics, already prefixed
	// (purchasesync_ingest_). Nil means a private registry (tests).
	Registerer prometheus.Registerer
	// Logger; nil: discard.
	Logger *slog.Logger
	// Listener, when set, is served instead of listening on Config.Addr
	// (tests use fasthttputil.InmemoryListener). Run closes it.
	Listener net.Listener
}

// Server is the public HTTP ingest.
type Server struct {
	cfg       Config
	client    *kgo.Client
	sites     Sites
	log       *slog.Logger
	m         *metrics
	verifier  *shopify.Verifier
	inflight  *inflightLimiter
	ipLimit   *tokenBuckets[netip.Addr]
	siteLimit *tokenBuckets[string]
	netLimit  *tokenBuckets[netip.Addr] // IPv6 /48s
	srv       *fasthttp.Server
	ln        net.Listener
	topics    [6]string // full names, indexed like topicLabels
	kafkaOK   atomic.Bool
	stopping  atomic.Bool
	idPrefix  string
	bodies    bodyBuffers
	guard     *connGuard // set by Run, before Serve
}

// Indexes into Server.topics and topicLabels.
const (
	tOrders = iota
	tStorefront
	tUnrouted
	tCompliance
	tOrderIDs
	tApp
)

// New checks cfg and builds a server; Run serves it.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Client == nil || deps.Sites == nil {
		return nil, errors.New("ingest: Deps.Client and Deps.Sites are required")
	}
	v, err := shopify.NewBoundVerifier(cfg.Secrets, cfg.ShopSecrets)
	if err != nil {
		return nil, fmt.Errorf("cannot build the webhook verifier (-shopify.apiSecret): %w", err)
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:]) // never fails (crypto/rand panics instead)
	m := newMetrics(reg)
	s := &Server{
		cfg:       cfg,
		client:    deps.Client,
		sites:     deps.Sites,
		log:       log.With("component", "ingest"),
		m:         m,
		verifier:  v,
		inflight:  newInflightLimiter(cfg.MaxInflightProduces, cfg.MaxQueueDuration, cfg.RetryAfter, m),
		ipLimit:   newTokenBuckets[netip.Addr](cfg.IPRate, cfg.IPBurst),
		siteLimit: newTokenBuckets[string](cfg.SiteRate, cfg.SiteBurst),
		netLimit:  newTokenBuckets[netip.Addr](cfg.IPRate*netFactor, cfg.IPBurst*netFactor),
		ln:        deps.Listener,
		idPrefix:  hex.EncodeToString(rnd[:]),
	}
	s.topics = [6]string{
		tOrders:     cfg.Topics.Name(schemas.TopicShopifyOrders),
		tStorefront: cfg.Topics.Name(schemas.TopicStorefrontPurchases),
		tUnrouted:   cfg.Topics.Name(schemas.TopicShopifyUnrouted),
		tCompliance: cfg.Topics.Name(schemas.TopicCompliance),
		tOrderIDs:   cfg.Topics.Name(schemas.TopicShopifyOrderIDs),
		tApp:        cfg.Topics.Name(schemas.TopicShopifyApp),
	}
	s.srv = &fasthttp.Server{
		Handler:      s.handle,
		ErrorHandler: s.handleTransportError,
		// Bodies are read by the route's handler with the route's limit
		// (body.go), so an announced Content-Length reserves nothing. A
		// streamed body is still prefetched up to min(limit, 8 KiB) before
		// the handler runs; a limit of 1 here makes that one byte, so that
		// an oversize announcement is refused after its first byte, not
		// after 8 KiB or the read timeout.
		StreamRequestBody: true,
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{MaxRequestBodySize: 1}
		},
		Name:        "purchasesync",
		Concurrency: cfg.MaxConns,
		// Connections per client are capped by connGuard (per IPv6 /64,
		// not per exact address), which also evicts idle ones.
		ConnState:       func(c net.Conn, st fasthttp.ConnState) { s.guard.connState(c, st) },
		ReadBufferSize:  cfg.MaxHeaderBytes,
		ReadTimeout:     cfg.ReadTimeout,
		WriteTimeout:    cfg.WriteTimeout,
		IdleTimeout:     cfg.IdleTimeout,
		CloseOnShutdown: true,
		// Nothing here is a form: don't parse multipart bodies eagerly.
		DisablePreParseMultipartForm: true,
		NoDefaultContentType:         true,
		Logger:                       fasthttpLogger{s.log},
	}
	return s, nil
}

const (
	webhookPath      = "/webhooks/shopify"
	storefrontPrefix = "/v1/sites/"
	storefrontSuffix = "/purchases"
)

// handle is the one route switch: every public endpoint is here.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	s.m.inflightRequests.Inc()
	path := ctx.Path()
	var endpoint string
	var err error
	switch {
	case !canonicalTarget(ctx):
		endpoint = endpointOther
		ctx.SetConnectionClose()
		err = statusErrorf(fasthttp.StatusBadRequest, "request target must be a plain path (no empty or dot segments, no percent-encoding)")
	case string(path) == webhookPath:
		endpoint = endpointWebhook
		if !ctx.IsPost() {
			err = methodNotAllowed(ctx, "POST")
			break
		}
		err = s.webhook(ctx)
	case bytes.HasPrefix(path, []byte(storefrontPrefix)) && bytes.HasSuffix(path, []byte(storefrontSuffix)):
		endpoint = endpointStorefront
		var site []byte
		if len(path) > len(storefrontPrefix)+len(storefrontSuffix) {
			site = path[len(storefrontPrefix) : len(path)-len(storefrontSuffix)]
		}
		switch {
		case !schemas.ValidSiteSlug(string(site)):
			err = statusErrorf(fasthttp.StatusNotFound, "unknown site")
		case ctx.IsPost():
			err = s.storefront(ctx, string(site))
		case ctx.IsOptions():
			err = s.preflight(ctx, string(site))
		default:
			err = methodNotAllowed(ctx, "POST, OPTIONS")
		}
	case announcesBody(&ctx.Request.Header):
		// Nothing else takes a body; refusing it unread (and closing) means
		// no route but the two above ever buffers one.
		endpoint = endpointOther
		if string(path) == "/healthz" || string(path) == "/readyz" {
			endpoint = endpointHealth
		}
		ctx.SetConnectionClose()
		err = &StatusError{Code: fasthttp.StatusRequestEntityTooLarge, Err: errNoBody}
	case string(path) == "/healthz":
		endpoint = endpointHealth
		if !ctx.IsGet() {
			err = methodNotAllowed(ctx, "GET")
			break
		}
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	case string(path) == "/readyz":
		endpoint = endpointHealth
		if !ctx.IsGet() {
			err = methodNotAllowed(ctx, "GET")
			break
		}
		if rerr := s.Ready(); rerr != nil {
			err = &StatusError{Code: fasthttp.StatusServiceUnavailable, Err: rerr}
			break
		}
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ready\n")
	default:
		endpoint = endpointOther
		err = statusErrorf(fasthttp.StatusNotFound, "no such endpoint")
	}
	if err != nil {
		if announcesBody(&ctx.Request.Header) {
			// A refusal may leave the body unread; don't spend the read
			// timeout draining it for a keep-alive.
			ctx.SetConnectionClose()
		}
		ctx.Response.Header.Set("X-Request-Id", s.requestID(ctx))
		writeError(ctx, err, s.log)
	}
	code := ctx.Response.StatusCode()
	s.m.requests.WithLabelValues(endpoint, codeLabel(code)).Inc()
	s.m.duration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	s.m.inflightRequests.Dec()
	if code >= 500 && code != fasthttp.StatusServiceUnavailable {
		s.log.Warn("request failed", "request_id", s.requestID(ctx), "endpoint", endpoint, "code", code, "err", err)
	} else if s.log.Enabled(context.Background(), slog.LevelDebug) {
		// 503s are counted (produce_errors_total, limit_timeouts_total) rather
		// than logged one by one: an outage would flood the log.
		s.log.Debug("request", "request_id", s.requestID(ctx), "endpoint", endpoint, "code", code, "err", err)
	}
}

func methodNotAllowed(ctx *fasthttp.RequestCtx, allow string) error {
	ctx.Response.Header.Set("Allow", allow)
	return statusErrorf(fasthttp.StatusMethodNotAllowed, "method %s not allowed; use %s", ctx.Method(), allow)
}

// handleTransportError answers requests that fail before the handler runs:
// fasthttp's default turns an oversize body into 400, which would hide the
// 413 clients need to see.
func (s *Server) handleTransportError(ctx *fasthttp.RequestCtx, err error) {
	var se *StatusError
	var smallBuf *fasthttp.ErrSmallBuffer
	var timeout interface{ Timeout() bool } // net.Error and fasthttputil's pipe error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		se = statusErrorf(fasthttp.StatusRequestEntityTooLarge, "body too large")
	case errors.As(err, &smallBuf):
		se = statusErrorf(fasthttp.StatusRequestHeaderFieldsTooLarge, "request headers too large")
	case errors.As(err, &timeout) && timeout.Timeout():
		se = statusErrorf(fasthttp.StatusRequestTimeout, "request not received within the read timeout")
	default:
		se = statusErrorf(fasthttp.StatusBadRequest, "malformed HTTP request")
	}
	endpoint := endpointOther
	uri := ctx.Request.Header.RequestURI()
	switch {
	case bytes.HasPrefix(uri, []byte(webhookPath)):
		endpoint = endpointWebhook
	case bytes.HasPrefix(uri, []byte(storefrontPrefix)):
		endpoint = endpointStorefront
	}
	writeError(ctx, se, s.log)
	s.m.requests.WithLabelValues(endpoint, codeLabel(se.Code)).Inc()
	s.log.Debug("request refused before the handler", "endpoint", endpoint, "code", se.Code, "err", err)
}

// requestID names a request in logs and in the X-Request-Id header of
// refusals: a per-process random prefix and fasthttp's request counter.
func (s *Server) requestID(ctx *fasthttp.RequestCtx) string {
	return s.idPrefix + "-" + strconv.FormatUint(ctx.ID(), 10)
}

// Ready reports why the server cannot take traffic, or nil: Kafka must be
// reachable and the site registry loaded, and the server not shutting down.
func (s *Server) Ready() error {
	switch {
	case s.stopping.Load():
		return errors.New("shutting down")
	case !s.sites.Ready():
		return errors.New("site registry not loaded yet")
	case !s.kafkaOK.Load():
		return errors.New("Kafka not reachable")
	}
	return nil
}

// Run serves until ctx ends, then shuts down gracefully: it stops accepting
// connections, lets in-flight requests finish (each waits at most
// ProduceTimeout for Kafka), flushes the producer, and returns within
// ShutdownTimeout. It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	ln := s.ln
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Addr); err != nil {
			return fmt.Errorf("cannot listen on %s (-ingest.addr): %w", s.cfg.Addr, err)
		}
	}
	s.log.Info("ingest listening", "addr", ln.Addr().String())
	s.guard = newConnGuard(ln, s.cfg.MaxConns, s.cfg.MaxConnsPerIP, s.m)
	ln = s.guard
	bg, stopBg := context.WithCancel(context.Background())
	defer stopBg()
	go s.watchKafka(bg)
	go s.sweepBuckets(bg)

	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ingest server failed: %w", err)
	case <-ctx.Done():
	}

	s.stopping.Store(true)
	s.log.Info("stopping ingest")
	start := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := s.srv.ShutdownWithContext(sctx); err != nil {
		errs = append(errs, fmt.Errorf("cannot finish in-flight requests within %s (-ingest.shutdownTimeout): %w", s.cfg.ShutdownTimeout, err))
	}
	// Shutdown only closes listeners Serve has registered; if ctx ended
	// before Serve got that far, closing ours is what makes Serve return.
	_ = ln.Close()
	if err := <-errc; err != nil {
		errs = append(errs, fmt.Errorf("ingest server failed while stopping: %w", err))
	}
	// Records of requests that already got 503 may still be buffered; they
	// were not acknowledged to anyone, but delivering them spares a retry.
	if err := s.client.Flush(sctx); err != nil {
		errs = append(errs, fmt.Errorf("cannot flush the Kafka producer within %s (-ingest.shutdownTimeout): %w", s.cfg.ShutdownTimeout, err))
	}
	s.log.Info("ingest stopped", "took", time.Since(start).String())
	return errors.Join(errs...)
}

// watchKafka pings Kafka for /readyz.
func (s *Server) watchKafka(ctx context.Context) {
	t := time.NewTicker(s.cfg.ReadyCheckInterval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, s.cfg.ReadyCheckInterval)
		err := s.client.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if was := s.kafkaOK.Swap(err == nil); was != (err == nil) {
			if err != nil {
				s.log.Warn("Kafka not reachable: not ready", "err", err)
			} else {
				s.log.Info("Kafka reachable")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepBuckets forgets refilled rate-limit buckets once a minute.
func (s *Server) sweepBuckets(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.ipLimit.sweep(now)
			s.siteLimit.sweep(now)
			s.netLimit.sweep(now)
		}
	}
}

// fasthttpLogger routes fasthttp's own messages (accept errors, limits) to slog.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Warn(fmt.Sprintf(format, args...), "source", "fasthttp")
}
