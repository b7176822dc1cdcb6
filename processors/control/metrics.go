package control

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	checked        prometheus.Counter
	recovered      prometheus.Counter
	passes         *prometheus.CounterVec
	recreated      *prometheus.CounterVec
	gaps           prometheus.Counter
	watchdogChecks *prometheus.CounterVec
	switches       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		checked: f.NewCounter(prometheus.CounterOpts{Name: "orders_checked_total",
			Help: "Orders listed through the Admin API by reconciliation."}),
		recovered: f.NewCounter(prometheus.CounterOpts{Name: "orders_recovered_total",
			Help: "Orders the pipeline never saw, produced into shopify.orders.v1 by reconciliation."}),
		passes: f.NewCounterVec(prometheus.CounterOpts{Name: "reconcile_passes_total",
			Help: "Reconciliation passes of one site, by outcome (ok, error)."}, []string{"outcome"}),
		recreated: f.NewCounterVec(prometheus.CounterOpts{Name: "subscriptions_recreated_total",
			Help: "Webhook subscriptions the watchdog found missing and recreated, by topic."}, []string{"topic"}),
		gaps: f.NewCounter(prometheus.CounterOpts{Name: "subscription_gaps_total",
			Help: "Enabled sites found without their orders/create subscription (each triggers a reconciliation)."}),
		watchdogChecks: f.NewCounterVec(prometheus.CounterOpts{Name: "watchdog_checks_total",
			Help: "Watchdog checks of one site, by outcome (ok, recreated, error)."}, []string{"outcome"}),
		switches: f.NewCounterVec(prometheus.CounterOpts{Name: "switch_total",
			Help: "Purchase Syncing enable/disable calls, by action and outcome (ok, error)."}, []string{"action", "outcome"}),
	}
}
