package keymode

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	observations *prometheus.CounterVec
	skipped      *prometheus.CounterVec
	sites        prometheus.Gauge
	contradicted prometheus.Gauge
	doubles      prometheus.Counter
	flushes      *prometheus.CounterVec
	restore      prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		observations: f.NewCounterVec(prometheus.CounterOpts{Name: "observations_total", Help: "Raw events turned into order-key observations, by side."}, []string{"side"}),
		skipped:      f.NewCounterVec(prometheus.CounterOpts{Name: "skipped_total", Help: "Raw records the detector did not observe, by reason (refund, undecodable, no_site)."}, []string{"reason"}),
		sites:        f.NewGauge(prometheus.GaugeOpts{Name: "sites", Help: "Sites whose window this instance holds."}),
		contradicted: f.NewGauge(prometheus.GaugeOpts{Name: "contradicted_sites", Help: "Syncing sites held by this instance whose storefront evidence contradicts their order_key (each is logged by name; purchasesync sites diagnose lists them)."}),
		doubles:      f.NewCounter(prometheus.CounterOpts{Name: "suspected_doubles_total", Help: "Storefront purchases matched to a webhook under another key than the configured one while syncing was on: each was registered twice."}),
		flushes:      f.NewCounterVec(prometheus.CounterOpts{Name: "flushes_total", Help: "Writes of changed windows and offset commits, by outcome."}, []string{"outcome"}),
		restore:      f.NewHistogram(prometheus.HistogramOpts{Name: "restore_seconds", Help: "Time to restore an assigned partition's windows from keymode.state.v1.", Buckets: prometheus.ExponentialBuckets(0.01, 3, 8)}),
	}
	for _, r := range []string{skipRefund, skipUndecodable, skipNoSite} {
		m.skipped.WithLabelValues(r)
	}
	for _, s := range []string{"webhook", "storefront"} {
		m.observations.WithLabelValues(s)
	}
	m.flushes.WithLabelValues("ok")
	m.flushes.WithLabelValues("failed")
	return m
}

// Reasons of skipped_total.
const (
	skipRefund      = "refund"
	skipUndecodable = "undecodable"
	skipNoSite      = "no_site"
)
