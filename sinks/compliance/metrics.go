package compliance

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	requests  *prometheus.CounterVec
	mutations *prometheus.CounterVec
	duration  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{Name: "compliance_requests_total",
			Help: "Privacy requests by topic and outcome (done, invalid, retried)."}, []string{"topic", "outcome"}),
		mutations: f.NewCounterVec(prometheus.CounterOpts{Name: "compliance_mutations_total",
			Help: "ClickHouse ALTER … UPDATE/DELETE mutations issued, by table."}, []string{"table"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{Name: "compliance_request_duration_seconds",
			Help: "Time to complete one privacy request, mutations included.", Buckets: prometheus.ExponentialBuckets(0.1, 2, 12)}, []string{"topic"}),
	}
}
