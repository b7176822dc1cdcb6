package sites

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	sites   prometheus.Gauge
	records prometheus.Counter
	invalid prometheus.Counter

	shopConflicts prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		sites:         f.NewGauge(prometheus.GaugeOpts{Name: "sites", Help: "Sites currently in the registry."}),
		records:       f.NewCounter(prometheus.CounterOpts{Name: "records_total", Help: "sites.v1 records read."}),
		invalid:       f.NewCounter(prometheus.CounterOpts{Name: "invalid_records_total", Help: "sites.v1 records that failed validation and were ignored."}),
		shopConflicts: f.NewGauge(prometheus.GaugeOpts{Name: "shop_conflicts", Help: "Shop domains that more than one site names; each routes to its most recently updated site."}),
	}
}
