package ingest

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"purchasesync/ingest/shopify"
)

// Endpoint label values: bounded, one per route of the switch in server.go.
const (
	endpointWebhook    = "webhook"
	endpointStorefront = "storefront"
	endpointHealth     = "health"
	endpointOther      = "other"
)

// Produce error kinds.
const (
	produceTimeout    = "timeout"     // no acknowledgement within -ingest.produceTimeout
	produceRejected   = "rejected"    // Kafka or the client failed the record
	produceBufferFull = "buffer_full" // the client's buffer was full (Kafka slow or away)
)

// Record kinds (label "topic"): the topic without prefix and version.
var topicLabels = []string{"shopify.orders", "storefront.purchases", "shopify.unrouted", "compliance", "shopify.order_ids", "shopify.app"}

type metrics struct {
	requests          *prometheus.CounterVec
	duration          *prometheus.HistogramVec
	bodyBytes         *prometheus.HistogramVec
	inflightRequests  prometheus.Gauge
	signatureFailures prometheus.Counter
	unrouted          *prometheus.CounterVec
	produceDuration   *prometheus.HistogramVec
	produceErrors     *prometheus.CounterVec
	rateLimited       *prometheus.CounterVec
	inflightCapacity  prometheus.Gauge
	inflightCurrent   prometheus.Gauge
	limitReached      prometheus.Counter
	limitTimeouts     prometheus.Counter
	connsRefused      prometheus.Counter
	idleConnsClosed   prometheus.Counter
}

// newMetrics registers the ingest metrics on reg, which the caller has
// prefixed with purchasesync_ingest_.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "requests_total", Help: "HTTP requests answered, by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "request_duration_seconds", Help: "Time from the request's arrival to the answer, by endpoint.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"endpoint"}),
		bodyBytes: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "request_body_bytes", Help: "Request body sizes, by endpoint.",
			Buckets: prometheus.ExponentialBuckets(256, 4, 8), // 256 B .. 4 MiB
		}, []string{"endpoint"}),
		inflightRequests: f.NewGauge(prometheus.GaugeOpts{
			Name: "inflight_requests", Help: "Requests being handled now.",
		}),
		signatureFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "signature_failures_total", Help: "Webhooks refused with 401: missing or bad X-Shopify-Hmac-Sha256.",
		}),
		unrouted: f.NewCounterVec(prometheus.CounterOpts{
			Name: "unrouted_total", Help: "Signed webhooks written to shopify.unrouted.v1, by reason.",
		}, []string{"reason"}),
		produceDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "produce_duration_seconds", Help: "Time from handing a record to Kafka to its acknowledgement (acks=all), by topic.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"topic"}),
		produceErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "produce_errors_total", Help: "Records not acknowledged in time (answered 503), by topic and kind.",
		}, []string{"topic", "kind"}),
		rateLimited: f.NewCounterVec(prometheus.CounterOpts{
			Name: "rate_limited_total", Help: "Storefront requests refused with 429, by the bucket that was empty (ip or site).",
		}, []string{"scope"}),
		inflightCapacity: f.NewGauge(prometheus.GaugeOpts{
			Name: "inflight_capacity", Help: "Records that may await Kafka's acknowledgement at once (-ingest.maxInflightProduces).",
		}),
		inflightCurrent: f.NewGauge(prometheus.GaugeOpts{
			Name: "inflight_current", Help: "Records awaiting Kafka's acknowledgement now.",
		}),
		limitReached: f.NewCounter(prometheus.CounterOpts{
			Name: "limit_reached_total", Help: "Requests that had to wait for an in-flight slot.",
		}),
		limitTimeouts: f.NewCounter(prometheus.CounterOpts{
			Name: "limit_timeouts_total", Help: "Requests answered 503 after waiting -ingest.maxQueueDuration for an in-flight slot.",
		}),
		connsRefused: f.NewCounter(prometheus.CounterOpts{
			Name: "connections_refused_total", Help: "Connections answered 429 and closed at once: their client (IPv4 address or IPv6 /64) had -ingest.maxConnsPerIP open.",
		}),
		idleConnsClosed: f.NewCounter(prometheus.CounterOpts{
			Name: "idle_connections_closed_total", Help: "Idle keep-alive connections closed to make room, past 7/8 of -ingest.maxConns.",
		}),
	}
	// Known label values start at zero, so rates and alerts work before the
	// first event of a kind.
	for _, e := range []string{endpointWebhook, endpointStorefront} {
		m.duration.WithLabelValues(e)
		m.bodyBytes.WithLabelValues(e)
	}
	for _, r := range shopify.Reasons {
		m.unrouted.WithLabelValues(r)
	}
	for _, t := range topicLabels {
		m.produceDuration.WithLabelValues(t)
		for _, k := range []string{produceTimeout, produceRejected, produceBufferFull} {
			m.produceErrors.WithLabelValues(t, k)
		}
	}
	m.rateLimited.WithLabelValues("ip")
	m.rateLimited.WithLabelValues("site")
	return m
}

// codes caches status code label values, avoiding an allocation per request.
var codes = func() map[int]string {
	m := map[int]string{}
	for c := 100; c < 600; c++ {
		m[c] = strconv.Itoa(c)
	}
	return m
}()

func codeLabel(c int) string {
	if s, ok := codes[c]; ok {
		return s
	}
	return strconv.Itoa(c)
}
