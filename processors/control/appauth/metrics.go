package appauth

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Outcomes of the OAuth routes (label values; a closed set).
const (
	OutcomeRedirected    = "redirected"     // /auth/shopify sent the merchant to Shopify
	OutcomeBadShop       = "bad_shop"       // shop missing or not name.myshopify.com
	OutcomeBusy          = "busy"           // too many installs in flight
	OutcomeInstalled     = "installed"      // token stored
	OutcomeBadHMAC       = "bad_hmac"       // callback query not signed by Shopify
	OutcomeStale         = "stale"          // callback timestamp too old or in the future
	OutcomeBadState      = "bad_state"      // unknown, used, expired, other shop, cookie missing or different
	OutcomeBadRequest    = "bad_request"    // no code, or a bad session token
	OutcomeExchangeError = "exchange_error" // Shopify refused or failed the token request
	OutcomeStoreError    = "store_error"    // Kafka did not take the token
)

type oauthMetrics struct {
	starts    *prometheus.CounterVec
	callbacks *prometheus.CounterVec
	exchanges *prometheus.CounterVec
	states    prometheus.GaugeFunc
}

func newOAuthMetrics(reg prometheus.Registerer, states func() float64) *oauthMetrics {
	f := promauto.With(reg)
	m := &oauthMetrics{
		starts: f.NewCounterVec(prometheus.CounterOpts{Name: "oauth_starts_total",
			Help: "GET /auth/shopify requests by outcome: redirected, bad_shop, busy."}, []string{"outcome"}),
		callbacks: f.NewCounterVec(prometheus.CounterOpts{Name: "oauth_callbacks_total",
			Help: "OAuth callbacks by outcome: installed, bad_shop, bad_hmac, stale, bad_state, bad_request, exchange_error, store_error."}, []string{"outcome"}),
		exchanges: f.NewCounterVec(prometheus.CounterOpts{Name: "token_exchanges_total",
			Help: "Session-token exchanges for an offline token by outcome: installed, bad_request, exchange_error, store_error."}, []string{"outcome"}),
		states: f.NewGaugeFunc(prometheus.GaugeOpts{Name: "oauth_pending_states",
			Help: "Install states issued and not yet used or expired."}, states),
	}
	for _, o := range []string{OutcomeRedirected, OutcomeBadShop, OutcomeBusy} {
		m.starts.WithLabelValues(o)
	}
	for _, o := range []string{OutcomeInstalled, OutcomeBadShop, OutcomeBadHMAC, OutcomeStale, OutcomeBadState, OutcomeBadRequest, OutcomeExchangeError, OutcomeStoreError} {
		m.callbacks.WithLabelValues(o)
	}
	for _, o := range []string{OutcomeInstalled, OutcomeBadRequest, OutcomeExchangeError, OutcomeStoreError} {
		m.exchanges.WithLabelValues(o)
	}
	return m
}

type storeMetrics struct {
	tokens        prometheus.Gauge
	records       prometheus.Counter
	undecryptable prometheus.Counter
}

func newStoreMetrics(reg prometheus.Registerer) *storeMetrics {
	f := promauto.With(reg)
	return &storeMetrics{
		tokens: f.NewGauge(prometheus.GaugeOpts{Name: "tokens",
			Help: "Shops with an access token in shopify.tokens.v1."}),
		records: f.NewCounter(prometheus.CounterOpts{Name: "token_records_total",
			Help: "shopify.tokens.v1 records read."}),
		undecryptable: f.NewCounter(prometheus.CounterOpts{Name: "token_undecryptable_records_total",
			Help: "shopify.tokens.v1 records that did not decrypt (a key id missing from PURCHASESYNC_TOKEN_KEY, a wrong key, a corrupt record); their shops have no token here."}),
	}
}

// Outcomes of the uninstall processor.
const (
	UninstallDone        = "done"        // token forgotten, syncing off
	UninstallReinstalled = "reinstalled" // the shop installed again after the event: nothing undone
	UninstallInvalid     = "invalid"     // not an app/uninstalled record, or no shop
)

type uninstallMetrics struct {
	uninstalls *prometheus.CounterVec
}

func newUninstallMetrics(reg prometheus.Registerer) *uninstallMetrics {
	f := promauto.With(reg)
	m := &uninstallMetrics{
		uninstalls: f.NewCounterVec(prometheus.CounterOpts{Name: "uninstalls_total",
			Help: "app/uninstalled records handled by outcome: done, reinstalled, invalid."}, []string{"outcome"}),
	}
	for _, o := range []string{UninstallDone, UninstallReinstalled, UninstallInvalid} {
		m.uninstalls.WithLabelValues(o)
	}
	return m
}
