package refundroute

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	routed          prometheus.Counter
	expired         prometheus.Counter
	indexed         prometheus.Counter
	skipped         prometheus.Counter
	waiting         prometheus.Gauge
	indexKeys       prometheus.Gauge
	restore         prometheus.Histogram
	restoredRecords prometheus.Counter
	aborts          prometheus.Counter
	sessionRestarts prometheus.Counter
	ready           prometheus.Gauge
}

// newMetrics registers the router's metrics on reg, which the caller has
// prefixed with purchasesync_refundroute_.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		routed: f.NewCounter(prometheus.CounterOpts{Name: "routed_total",
			Help: "Refunds written to shopify.orders.v1 under their purchase's key, counted when their transaction commits."}),
		expired: f.NewCounter(prometheus.CounterOpts{Name: "expired_total",
			Help: "Refunds written to shopify.unrouted.v1 (reason refund_order_unknown): no index record of their order within -refundroute.orderWait."}),
		indexed: f.NewCounter(prometheus.CounterOpts{Name: "index_records_total",
			Help: "Order index records applied."}),
		skipped: f.NewCounter(prometheus.CounterOpts{Name: "skipped_total",
			Help: "Records of shopify.order_ids.v1 that are neither an index record nor a refund (or have a malformed key); skipped."}),
		waiting: f.NewGauge(prometheus.GaugeOpts{Name: "waiting_refunds",
			Help: "Refunds waiting for their order's index record, in the partitions this instance owns."}),
		indexKeys: f.NewGauge(prometheus.GaugeOpts{Name: "index_keys",
			Help: "Order index entries remembered (within -refundroute.indexHorizon), in the partitions this instance owns."}),
		restore: f.NewHistogram(prometheus.HistogramOpts{Name: "restore_duration_seconds",
			Help:    "Time to rebuild one partition's state by replaying shopify.order_ids.v1 up to the first record to process.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8)}),
		restoredRecords: f.NewCounter(prometheus.CounterOpts{Name: "restored_records_total",
			Help: "Records replayed by restores."}),
		aborts: f.NewCounter(prometheus.CounterOpts{Name: "transaction_aborts_total",
			Help: "Transactions aborted (rebalance, failed produce, shutdown); their input is read again."}),
		sessionRestarts: f.NewCounter(prometheus.CounterOpts{Name: "session_restarts_total",
			Help: "Transactional sessions restarted after a Kafka fault."}),
		ready: f.NewGauge(prometheus.GaugeOpts{Name: "ready",
			Help: "1 while the router processes normally, 0 during a Kafka fault episode or before it started."}),
	}
}
