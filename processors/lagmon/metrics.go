package lagmon

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	lag       *prometheus.GaugeVec   // group, topic, partition
	committed *prometheus.GaugeVec   // group, topic, partition
	members   *prometheus.GaugeVec   // group
	errors    *prometheus.CounterVec // group
}

// newMetrics registers the monitor's metrics; reg is expected to add the
// purchasesync_consumer_ prefix.
func newMetrics(reg prometheus.Registerer, groups []string) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		lag: f.NewGaugeVec(prometheus.GaugeOpts{Name: "lag_records",
			Help: "Records between the group's committed offset and the end of the partition (as Kafka sees it, whether or not the group is running)."},
			[]string{"group", "topic", "partition"}),
		committed: f.NewGaugeVec(prometheus.GaugeOpts{Name: "committed_offset",
			Help: "The group's committed offset of the partition; a partition whose offset stops moving while its lag grows is stalled."},
			[]string{"group", "topic", "partition"}),
		members: f.NewGaugeVec(prometheus.GaugeOpts{Name: "group_members",
			Help: "Members of the consumer group (0: no instance of the stage is consuming)."}, []string{"group"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{Name: "lag_errors_total",
			Help: "Lag reads of the group that failed (the lag gauges keep their last values)."}, []string{"group"}),
	}
	for _, g := range groups {
		m.errors.WithLabelValues(g)
	}
	return m
}
