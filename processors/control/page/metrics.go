package page

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	views    *prometheus.CounterVec
	switches *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		views:    f.NewCounterVec(prometheus.CounterOpts{Name: "views_total", Help: "Views of the Shopify Integration page, by outcome (ok, unauthenticated, no_site, shopify_error)."}, []string{"outcome"}),
		switches: f.NewCounterVec(prometheus.CounterOpts{Name: "switches_total", Help: "Purchase Syncing switches from the page, by action (enable, disable, unknown) and outcome (ok, order_key, refused, missing_scope, revoked, throttled, unreachable, failed)."}, []string{"action", "outcome"}),
	}
	for _, o := range []string{"ok", "unauthenticated", "no_site", "shopify_error"} {
		m.views.WithLabelValues(o)
	}
	return m
}
