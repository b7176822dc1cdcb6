package clickhouse

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	rows          *prometheus.CounterVec   // table
	batches       *prometheus.CounterVec   // table
	batchSeconds  *prometheus.HistogramVec // table
	insertErrors  *prometheus.CounterVec   // table, kind
	retrying      prometheus.Gauge
	retries       prometheus.Counter
	deadLetters   *prometheus.CounterVec // topic, kind
	buffered      prometheus.Gauge
	lag           *prometheus.GaugeVec     // topic
	e2e           *prometheus.HistogramVec // table
	commitErrors  prometheus.Counter
	roundedValues prometheus.Counter
}

// newMetrics registers the sink's metrics; reg is expected to add the
// purchasesync_sink_ prefix.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		rows: f.NewCounterVec(prometheus.CounterOpts{Name: "rows_total",
			Help: "Rows inserted into ClickHouse, by table (retries of a batch count once)."}, []string{"table"}),
		batches: f.NewCounterVec(prometheus.CounterOpts{Name: "batches_total",
			Help: "Batches inserted into ClickHouse, by table."}, []string{"table"}),
		batchSeconds: f.NewHistogramVec(prometheus.HistogramOpts{Name: "batch_duration_seconds",
			Help:    "Time of one successful batch insert (prepare, append, send), by table.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"table"}),
		insertErrors: f.NewCounterVec(prometheus.CounterOpts{Name: "insert_errors_total",
			Help: "Failed insert attempts, by table and kind (connect, server, send, append)."}, []string{"table", "kind"}),
		retrying: f.NewGauge(prometheus.GaugeOpts{Name: "retrying",
			Help: "1 while a batch is being retried and consumption is held, else 0."}),
		retries: f.NewCounter(prometheus.CounterOpts{Name: "retries_total",
			Help: "Insert or dead-letter attempts that were retried after a backoff."}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{Name: "dead_letters_total",
			Help: "Records sent to the dead-letter topic, by source topic and kind (decode, invalid, append)."}, []string{"topic", "kind"}),
		buffered: f.NewGauge(prometheus.GaugeOpts{Name: "buffered_rows",
			Help: "Rows held in memory for the next insert (at most -sink.batchRows)."}),
		lag: f.NewGaugeVec(prometheus.GaugeOpts{Name: "consumer_lag_records",
			Help: "Records behind the end of each input topic, summed over this instance's partitions."}, []string{"topic"}),
		e2e: f.NewHistogramVec(prometheus.HistogramOpts{Name: "end_to_end_latency_seconds",
			Help:    "From ingest's received-at to the row's insert into ClickHouse, by table.",
			Buckets: []float64{.05, .1, .25, .5, 1, 1.5, 2, 3, 5, 10, 30, 60, 300, 1800}}, []string{"table"}),
		commitErrors: f.NewCounter(prometheus.CounterOpts{Name: "commit_errors_total",
			Help: "Failed Kafka offset commits (the records are read again and collapse in FINAL)."}),
		roundedValues: f.NewCounter(prometheus.CounterOpts{Name: "rounded_values_total",
			Help: "Money values with more than 4 decimals, rounded half away from zero before insert."}),
	}
}
