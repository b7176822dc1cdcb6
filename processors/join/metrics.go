package join

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	decisions     decisionCounter
	discrepancies *prometheus.CounterVec
	held          prometheus.Gauge
	overdue       prometheus.Gauge
	oldestOverdue prometheus.Gauge
	stateKeys     prometheus.Gauge
	spilledKeys   prometheus.Gauge
	spillBytes    prometheus.Gauge
	restore       prometheus.Histogram
	restoredKeys  prometheus.Counter
	txn           prometheus.Histogram
	aborts        prometheus.Counter
	lag           *prometheus.GaugeVec
	invalid       *prometheus.CounterVec
	holdReleases  *prometheus.CounterVec
	pending       prometheus.Gauge
	paused        prometheus.Gauge
	// Kafka faults.
	sessionRestarts prometheus.Counter
	produceRefused  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		decisions: decisionCounter{vec: f.NewCounterVec(prometheus.CounterOpts{Name: "decisions_total",
			Help: "Join decisions by outcome (registered_storefront, registered_webhook, registered_reconciliation, matched, matched_late, duplicate, held, webhook_missing, expired, refunded, refund_unconverted)."}, []string{"outcome"})},
		holdReleases: f.NewCounterVec(prometheus.CounterOpts{Name: "hold_releases_total",
			Help: "Held webhook purchases released, by the clock that released them: event (before a later record, by its received-at: the join was behind) or wall (at a periodic tick)."}, []string{"clock"}),
		pending: f.NewGauge(prometheus.GaugeOpts{Name: "pending_records",
			Help: "Input records read but not yet applied: each waits until the other input is read up to its received-at (event-time order); their offsets are not committed."}),
		paused: f.NewGauge(prometheus.GaugeOpts{Name: "paused_inputs",
			Help: "Input partitions whose fetching is paused because they are too far ahead of the other input (more than max poll records pending)."}),
		discrepancies: f.NewCounterVec(prometheus.CounterOpts{Name: "discrepancies_total",
			Help: "Discrepancies emitted, by field (webhook_missing has field \"none\")."}, []string{"field"}),
		held: f.NewGauge(prometheus.GaugeOpts{Name: "held_purchases", Help: "Webhook purchases waiting for their storefront event (rule 3)."}),
		overdue: f.NewGauge(prometheus.GaugeOpts{Name: "overdue_holds",
			Help: "Held purchases past received_at + the site's grace, not yet released: rule 9 keeps them while the partition's storefront input is behind."}),
		oldestOverdue: f.NewGauge(prometheus.GaugeOpts{Name: "oldest_overdue_hold_seconds",
			Help: "How long past its deadline (received_at + grace) the oldest overdue hold is; 0 when none is."}),
		stateKeys: f.NewGauge(prometheus.GaugeOpts{Name: "state_keys", Help: "Keys held in join state on this instance."}),
		spilledKeys: f.NewGauge(prometheus.GaugeOpts{Name: "spilled_keys",
			Help: "Keys of state_keys whose settled state is in the partitions' spill files (-join.stateDir), not in memory."}),
		spillBytes: f.NewGauge(prometheus.GaugeOpts{Name: "spill_file_bytes",
			Help: "Bytes of the partitions' spill files, dead ones included (a file is rewritten once its dead bytes outweigh its live ones)."}),
		restore: f.NewHistogram(prometheus.HistogramOpts{Name: "restore_seconds", Help: "Time to restore one partition's state from join.state.v1.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 10)}),
		restoredKeys: f.NewCounter(prometheus.CounterOpts{Name: "restored_keys_total", Help: "Keys restored from join.state.v1."}),
		txn: f.NewHistogram(prometheus.HistogramOpts{Name: "transaction_seconds", Help: "Time to commit one Kafka transaction (End).",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 12)}),
		aborts: f.NewCounter(prometheus.CounterOpts{Name: "transaction_aborts_total", Help: "Transactions aborted (rebalance, fencing, produce failure)."}),
		lag: f.NewGaugeVec(prometheus.GaugeOpts{Name: "input_lag_records",
			Help: "Records of each input partition not yet processed."}, []string{"topic", "partition"}),
		invalid: f.NewCounterVec(prometheus.CounterOpts{Name: "invalid_records_total",
			Help: "Input records that could not be decoded (sent to the dead-letter topic)."}, []string{"topic"}),
		sessionRestarts: f.NewCounter(prometheus.CounterOpts{Name: "session_restarts_total",
			Help: "Transactional sessions restarted after a Kafka fault (broker lost, failed begin or end of a transaction, failed produce); state is restored each time."}),
		produceRefused: f.NewCounterVec(prometheus.CounterOpts{Name: "produce_refused_total",
			Help: "Output records Kafka refused for good (larger than the topic's max.message.bytes), by output topic: the transaction was aborted and the input that made the record went to the dead-letter topic."}, []string{"topic"}),
	}
}

// decisionCounter counts decisions by outcome: in decisions_total and, in
// a replay, in the summary's tally too (a replay reports its outcomes
// without reading them back from a registry).
type decisionCounter struct {
	vec   *prometheus.CounterVec
	tally map[string]int64 // nil but in a replay
}

// decided counts one decision with the given outcome.
func (c decisionCounter) decided(outcome string) {
	c.vec.WithLabelValues(outcome).Inc()
	if c.tally != nil {
		c.tally[outcome]++
	}
}
