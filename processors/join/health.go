package join

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// newHealthMetric is the join's ready gauge; processors/internal/episode
// moves it through Kafka fault episodes.
func newHealthMetric(reg prometheus.Registerer) prometheus.Gauge {
	return promauto.With(reg).NewGauge(prometheus.GaugeOpts{Name: "ready",
		Help: "1 while the join processes normally, 0 during a Kafka fault episode (its transactional session is being restarted) or before it started."})
}
