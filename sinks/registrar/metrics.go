package registrar

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	requests  *prometheus.CounterVec // outcome
	duration  prometheus.Histogram
	forwarded prometheus.Counter
	// refundsForwarded counts refunds marked in the registry.
	refundsForwarded prometheus.Counter
	skipped          *prometheus.CounterVec // reason
	deadLetters      *prometheus.CounterVec // reason
	retries          prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{Name: "requests_total",
			Help: "Requests to the purchase registry, by outcome (created, exists, throttled, server_error, network_error, auth_error, rejected)."}, []string{"outcome"}),
		duration: f.NewHistogram(prometheus.HistogramOpts{Name: "request_duration_seconds",
			Help: "Duration of one request to the purchase registry.", Buckets: prometheus.DefBuckets}),
		forwarded: f.NewCounter(prometheus.CounterOpts{Name: "forwarded_total",
			Help: "Purchases registered in the registry (created, or found existing)."}),
		refundsForwarded: f.NewCounter(prometheus.CounterOpts{Name: "refunds_forwarded_total",
			Help: "Refunds marked in the registry (POST .../origins/<order_number>/refund), after their purchase."}),
		skipped: f.NewCounterVec(prometheus.CounterOpts{Name: "skipped_total",
			Help: "purchases.v1 records not forwarded, by reason (later_version, already_forwarded, test, via, superseded: a refund of a poll with a later one of the same purchase)."}, []string{"reason"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{Name: "dead_letters_total",
			Help: "Purchases sent to the dead-letter topic, by reason (decode, rejected, attempts)."}, []string{"reason"}),
		retries: f.NewCounter(prometheus.CounterOpts{Name: "retries_total",
			Help: "Requests retried after a throttled, failed or unauthorised attempt."}),
	}
}
