package schemas

import (
	"fmt"
	"strings"
	"time"
)

// The order-key detector's topics (processors/keymode). Observations are the
// raw topics' identifiers re-keyed by site, so that both sides of a wrongly
// keyed order (which land on different keys, hence partitions) meet in one
// place; the state topic is the detector's changelog; the evidence topic is
// its summary per site, which the admin API reads.
const (
	TopicKeyModeObservations = "keymode.observations.v1"
	TopicKeyModeState        = "keymode.state.v1"
	TopicKeyModeEvidence     = "keymode.evidence.v1"
)

// Sides of a KeyModeObservation.
const (
	SideWebhook    = "webhook"
	SideStorefront = "storefront"
)

// KeyModeObservation is one record of keymode.observations.v1 (key: site):
// the identifiers one raw event carried. A webhook (or reconciled order)
// carries Shopify's three identifiers; a storefront event the order number
// its JavaScript sent, untouched by any mode's normalisation.
type KeyModeObservation struct {
	Site string    `json:"site"`
	Side string    `json:"side"`
	At   time.Time `json:"at"` // received-at
	// Storefront side.
	Value string `json:"value,omitempty"`
	// Webhook side.
	ID     string `json:"id,omitempty"`
	Number string `json:"number,omitempty"`
	Name   string `json:"name,omitempty"`
}

// OrderKeys lists the modes in the order a tie is broken: the standard
// integration first.
var OrderKeys = []OrderKey{OrderKeyID, OrderKeyNumber, OrderKeyName}

// KeyModesMatching returns the modes under which the storefront's value v
// and the webhook's identifiers give the same key, exactly as the join
// normalises them (NormalizeOrderNumber): order_id compares the id,
// order_number strips the storefront's '#' and compares Shopify's
// order_number, order_name compares the name as is. A store's own name
// prefix or suffix ("EU-1001-B") thus fits order_name when the storefront
// sends the name and order_number when it sends the number.
func KeyModesMatching(v, id, number, name string) []OrderKey {
	var out []OrderKey
	for _, m := range OrderKeys {
		var w string
		switch m {
		case OrderKeyID:
			w = id
		case OrderKeyNumber:
			w = number
		case OrderKeyName:
			w = name
		}
		w = NormalizeOrderNumber(m, w)
		if w != "" && NormalizeOrderNumber(m, v) == w {
			out = append(out, m)
		}
	}
	return out
}

// KeyModeSample is one matched pair behind a mode's evidence.
type KeyModeSample struct {
	Storefront string    `json:"storefront"`
	ShopifyID  string    `json:"shopify_id"`
	Number     string    `json:"order_number"`
	Name       string    `json:"name"`
	At         time.Time `json:"at"`
}

// KeyModeModeEvidence is the evidence for one mode: how many storefront
// events of the window matched a webhook under it, with a few samples.
type KeyModeModeEvidence struct {
	Matches int             `json:"matches"`
	Samples []KeyModeSample `json:"samples"`
}

// KeyModeEvidence is one record of keymode.evidence.v1 (key: site): what
// the detector's window of the site holds.
type KeyModeEvidence struct {
	Site             string                           `json:"site"`
	WindowFrom       time.Time                        `json:"window_from"`
	WindowTo         time.Time                        `json:"window_to"`
	StorefrontEvents int                              `json:"storefront_events"`
	Webhooks         int                              `json:"webhooks"`
	Matched          int                              `json:"matched"`
	Modes            map[OrderKey]KeyModeModeEvidence `json:"modes"`
	// SuspectedDoubles counts matched pairs whose modes exclude the mode
	// configured when they met: the two sides had different keys, so the
	// join registered both.
	SuspectedDoubles int       `json:"suspected_double_registrations"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// Verdicts of a KeyModeDiagnosis.
const (
	VerdictInsufficient      = "insufficient_evidence"
	VerdictConsistent        = "consistent"
	VerdictContradicted      = "contradicted"
	VerdictInconclusive      = "inconclusive"
	DefaultKeyModeMinMatches = 20
)

// KeyModeDiagnosis is the body of GET /admin/v1/sites/{site}/diagnosis and
// of `purchasesync sites diagnose -o json`.
type KeyModeDiagnosis struct {
	Site               string    `json:"site"`
	ConfiguredOrderKey OrderKey  `json:"configured_order_key"`
	SuggestedOrderKey  *OrderKey `json:"suggested_order_key"`
	Verdict            string    `json:"verdict"`
	Message            string    `json:"message"`
	// Evidence per mode: matches and samples.
	Evidence                     map[OrderKey]KeyModeModeEvidence `json:"evidence"`
	SamplesSeen                  int                              `json:"samples_seen"` // storefront events in the window
	WebhooksSeen                 int                              `json:"webhooks_seen"`
	Matched                      int                              `json:"matched"`
	SuspectedDoubleRegistrations int                              `json:"suspected_double_registrations"`
	WindowFrom                   *time.Time                       `json:"window_from"`
	WindowTo                     *time.Time                       `json:"window_to"`
}

// Thresholds of DiagnoseKeyMode: a mode fits when it explains at least
// fitShare of the matched pairs; the configured mode is contradicted when
// it explains less than contradictShare of them while another fits. Noise
// (a test order, a storefront event of a different order) then cannot flip
// the verdict, and a site half-way through a mode change stays
// inconclusive rather than alarming.
const (
	keyModeFitShare        = 0.9
	keyModeContradictShare = 0.5
)

// DiagnoseKeyMode judges a site's configured order_key against the
// detector's evidence (nil: none yet); minMatches is how many matched pairs
// make a verdict.
func DiagnoseKeyMode(site Site, ev *KeyModeEvidence, minMatches int) KeyModeDiagnosis {
	configured := site.OrderKey
	if configured == "" {
		configured = OrderKeyID
	}
	d := KeyModeDiagnosis{Site: site.Site, ConfiguredOrderKey: configured, Evidence: map[OrderKey]KeyModeModeEvidence{}}
	for _, m := range OrderKeys {
		d.Evidence[m] = KeyModeModeEvidence{Samples: []KeyModeSample{}}
	}
	if ev != nil {
		for m, e := range ev.Modes {
			if e.Samples == nil {
				e.Samples = []KeyModeSample{}
			}
			d.Evidence[m] = e
		}
		d.SamplesSeen, d.WebhooksSeen, d.Matched = ev.StorefrontEvents, ev.Webhooks, ev.Matched
		d.SuspectedDoubleRegistrations = ev.SuspectedDoubles
		if !ev.WindowFrom.IsZero() {
			from, to := ev.WindowFrom, ev.WindowTo
			d.WindowFrom, d.WindowTo = &from, &to
		}
	}
	if d.Matched < minMatches {
		d.Verdict = VerdictInsufficient
		d.Message = fmt.Sprintf("%d storefront purchases matched a Shopify order so far; %d are needed for a verdict", d.Matched, minMatches)
		return d
	}
	share := func(m OrderKey) float64 { return float64(d.Evidence[m].Matches) / float64(d.Matched) }
	if share(configured) >= keyModeFitShare {
		d.Verdict = VerdictConsistent
		d.Message = fmt.Sprintf("the storefront sends the %s: %d of %d matched purchases fit the configured mode", configured.Describe(), d.Evidence[configured].Matches, d.Matched)
		return d
	}
	best := OrderKey("")
	for _, m := range OrderKeys { // the first of equals wins: OrderKeys' order
		if m != configured && share(m) >= keyModeFitShare && (best == "" || d.Evidence[m].Matches > d.Evidence[best].Matches) {
			best = m
		}
	}
	if best != "" && share(configured) < keyModeContradictShare {
		d.Verdict = VerdictContradicted
		d.SuggestedOrderKey = &best
		d.Message = fmt.Sprintf("the storefront sends the %s, not the %s: %d of %d matched purchases fit order_key %s, %d fit the configured %s; every such purchase is registered twice while syncing is on",
			best.Describe(), configured.Describe(), d.Evidence[best].Matches, d.Matched, best, d.Evidence[configured].Matches, configured)
		return d
	}
	d.Verdict = VerdictInconclusive
	parts := make([]string, 0, len(OrderKeys))
	for _, m := range OrderKeys {
		parts = append(parts, fmt.Sprintf("%s %d", m, d.Evidence[m].Matches))
	}
	d.Message = fmt.Sprintf("no mode explains %.0f%% of the %d matched purchases (%s); the storefront may have changed what it sends", keyModeFitShare*100, d.Matched, strings.Join(parts, ", "))
	return d
}

// Describe names what a storefront sends in mode m, for people.
func (m OrderKey) Describe() string {
	switch m {
	case OrderKeyNumber:
		return "order number (1001)"
	case OrderKeyName:
		return "order name (#1001)"
	}
	return "order id"
}

// DoubleRegistration is one suspected double registration (the ClickHouse
// view suspected_double_registrations): the purchase registered from
// Shopify under ShopifyOrderNumber, whose storefront twin was registered
// under StorefrontOrderNumber. The Shopify one is the double; its
// ShopifyOrderNumber is its origin slug in the purchase registry.
type DoubleRegistration struct {
	Site                   string     `json:"site"`
	ShopifyOrderNumber     string     `json:"shopify_order_number"`
	StorefrontOrderNumber  string     `json:"storefront_order_number"`
	ShopifyOrderID         string     `json:"shopify_order_id"`
	ShopifyOrderName       string     `json:"shopify_order_name"`
	ShopifyRegisteredVia   string     `json:"shopify_registered_via"`
	ShopifyRegisteredAt    time.Time  `json:"shopify_registered_at"`
	StorefrontRegisteredAt time.Time  `json:"storefront_registered_at"`
	Marked                 bool       `json:"marked"`
	MarkedAt               *time.Time `json:"marked_at"`
}
