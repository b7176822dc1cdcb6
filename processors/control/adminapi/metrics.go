package adminapi

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	throttleWait prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "shopify_requests_total",
			Help: "Shopify Admin API calls by operation and outcome (ok, retry, throttled, error).",
		}, []string{"operation", "outcome"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shopify_request_duration_seconds",
			Help:    "Latency of one Shopify Admin API HTTP request.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 10),
		}, []string{"operation"}),
		throttleWait: f.NewCounter(prometheus.CounterOpts{
			Name: "shopify_throttle_wait_seconds_total",
			Help: "Time spent waiting for Shopify's cost bucket to refill.",
		}),
	}
}
