package freshness

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	newest   *prometheus.GaugeVec     // table
	errors   *prometheus.CounterVec   // table
	duration *prometheus.HistogramVec // table
}

// newMetrics registers the monitor's metrics; reg is expected to add the
// purchasesync_freshness_ prefix.
func newMetrics(reg prometheus.Registerer, tables []Table) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		newest: f.NewGaugeVec(prometheus.GaugeOpts{Name: "newest_row_timestamp_seconds",
			Help: "Unix time of the newest row of the ClickHouse table (purchases.updated_at, discrepancies.detected_at, raw_events.received_at); time() minus it is the table's age."},
			[]string{"table"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{Name: "query_errors_total",
			Help: "Failed reads of the table's newest row (the timestamp keeps its last value, so the age keeps growing)."},
			[]string{"table"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{Name: "query_duration_seconds",
			Help:    "Time of one successful read of the table's newest row.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}, // 1 ms .. 16 s
			[]string{"table"}),
	}
	for _, t := range tables {
		m.errors.WithLabelValues(t.Name)
		m.duration.WithLabelValues(t.Name)
	}
	return m
}
