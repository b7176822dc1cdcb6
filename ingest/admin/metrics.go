package admin

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	requests        *prometheus.CounterVec
	visibleTimeouts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "requests_total",
			Help: "Admin API requests by route and HTTP status code.",
		}, []string{"route", "code"}),
		visibleTimeouts: f.NewCounter(prometheus.CounterOpts{
			Name: "write_visible_timeouts_total",
			Help: "Writes acknowledged by Kafka that the site registry did not show within the visible timeout.",
		}),
	}
}
