package discrepancy

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	discrepancies *prometheus.CounterVec // field
	messages      *prometheus.CounterVec // outcome
	pending       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		discrepancies: f.NewCounterVec(prometheus.CounterOpts{Name: "discrepancies_total",
			Help: "Discrepancies read, by field (webhook_missing for missing webhooks)."}, []string{"field"}),
		messages: f.NewCounterVec(prometheus.CounterOpts{Name: "messages_total",
			Help: "Digest posts, by outcome (sent, failed: kept for the next interval)."}, []string{"outcome"}),
		pending: f.NewGauge(prometheus.GaugeOpts{Name: "pending_sites",
			Help: "Sites with discrepancies not yet reported."}),
	}
}
