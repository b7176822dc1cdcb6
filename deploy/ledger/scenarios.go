package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"purchasesync/ingest/ingesttest"
	"purchasesync/schemas"
)

// step is one thing a scenario does, in order.
type step int

const (
	stepStorefront step = iota // the browser's event, sent once
	stepReload                 // the same event again (thank-you page reload)
	stepWebhook                // the webhook, retried until acknowledged, redelivered
	stepDuplicate              // the same order under a second webhook id (Shopify sends some events twice)
	stepForged                 // a webhook signed with another secret: must get 401
	stepMalformed              // a storefront event that must get 400
	stepInGrace                // wait a fifth of the grace
	stepPastGrace              // wait the grace and 3 s more
)

// scenario is one kind of order and what its bodies look like.
type scenario struct {
	name  string
	steps []step
	// drift is the one compared field the browser gets wrong (one of
	// ingesttest.Drifts): one field_mismatch discrepancy is due.
	drift string
	// lookalike: the browser's values differ from Shopify's only in ways
	// the comparison must forgive (case, spaces, a number for a string,
	// trailing zeros): no discrepancy is due.
	lookalike    bool
	test         bool // a Shopify test order: recorded with test = true
	presentment  bool // the buyer paid in another currency than the shop's
	unicodeEmail bool
}

// scenarios is every kind of order the check sends; each runs on every
// order_key mode.
var scenarios = []scenario{
	{name: "storefront-first", steps: []step{stepStorefront, stepWebhook}},
	{name: "webhook-first", steps: []step{stepWebhook, stepInGrace, stepStorefront}},
	{name: "late-browser", steps: []step{stepWebhook, stepPastGrace, stepStorefront}},
	{name: "browser-missing", steps: []step{stepWebhook}},
	{name: "webhook-missing", steps: []step{stepStorefront}},
	{name: "webhook-repeated", steps: []step{stepStorefront, stepWebhook, stepDuplicate}},
	{name: "page-reload", steps: []step{stepStorefront, stepReload, stepWebhook}},
	{name: "mismatch-subtotal", steps: []step{stepStorefront, stepWebhook}, drift: "subtotal"},
	{name: "mismatch-email", steps: []step{stepWebhook, stepInGrace, stepStorefront}, drift: "email"},
	{name: "mismatch-coupon", steps: []step{stepStorefront, stepWebhook}, drift: "coupon_codes"},
	{name: "mismatch-zip-late", steps: []step{stepWebhook, stepPastGrace, stepStorefront}, drift: "shipping_zip"},
	// Every side repeated: the discrepancy is still recorded once.
	{name: "mismatch-repeats", steps: []step{stepStorefront, stepReload, stepWebhook, stepDuplicate}, drift: "email"},
	{name: "lookalike-values", steps: []step{stepStorefront, stepWebhook}, lookalike: true},
	{name: "bad-signature", steps: []step{stepForged}},
	{name: "malformed-storefront", steps: []step{stepMalformed, stepWebhook}},
	{name: "unicode", steps: []step{stepStorefront, stepWebhook}, unicodeEmail: true},
	{name: "test-order", steps: []step{stepWebhook, stepInGrace, stepStorefront}, test: true},
	{name: "presentment-currency", steps: []step{stepStorefront, stepWebhook}, presentment: true},
	{name: "presentment-webhook-only", steps: []step{stepWebhook}, presentment: true},
}

var modes = []schemas.OrderKey{schemas.OrderKeyID, schemas.OrderKeyNumber, schemas.OrderKeyName}

// siteName is the check's site for an order_key mode.
func siteName(runID string, mode schemas.OrderKey) string {
	short := map[schemas.OrderKey]string{schemas.OrderKeyID: "id", schemas.OrderKeyNumber: "number", schemas.OrderKeyName: "name"}[mode]
	return "ledger-" + runID + "-" + short
}

// order is one synthetic order: its bodies, and what happened to them.
type order struct {
	n    int
	sc   *scenario
	mode schemas.OrderKey
	site string
	key  string // the normalised order_number both sides are keyed by

	webhook, storefront, malformed []byte
	webhookID                      string
	// The amount and currency the registering side carries.
	sfSubtotal, sfCurrency, whSubtotal, whCurrency string
	orderID                                        string

	// Written by the order's own goroutine, read after every order is done.
	sf, wh, forged, malformedAns []answer
	whAcked, whGaveUp            bool
}

// answer is one request and how it ended.
type answer struct {
	end  time.Time
	code int // 0: no answer
}

// newOrder makes order n of a run.
func newOrder(runID string, seed uint64, n int) *order {
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	sc := &scenarios[n%len(scenarios)]
	mode := modes[(n/len(scenarios))%len(modes)]
	p := ingesttest.NewPurchase(rng, int64(n), 1+rng.IntN(4))
	// Spelling variants alternate per round of every scenario on every
	// mode, so each scenario meets each variant.
	variant := n / (len(scenarios) * len(modes)) % 2
	p.Trimmed = rng.IntN(4) == 0
	p.Test = sc.test
	p.Drift = sc.drift
	if sc.drift == "coupon_codes" && p.Coupon == "" {
		p.Coupon = "WELCOME10" // the drift adds a code; keep one Shopify knows too
	}
	if sc.presentment {
		p.ShopCurrency = "USD"
		if p.Currency == "USD" {
			p.Currency = "EUR"
		}
	}
	if sc.unicodeEmail {
		p.Email = fmt.Sprintf("zoë.ångström.%d@exämple.com", n)
	}
	o := &order{n: n, sc: sc, mode: mode, site: siteName(runID, mode), webhookID: fmt.Sprintf("ledger-%s-%d", runID, n)}
	o.orderID = fmt.Sprint(p.ID)
	o.webhook = p.OrderBody()
	o.key = schemas.NormalizeOrderNumber(mode, p.OrderNumberFor(mode))

	sf := decode(p.StorefrontBody(mode))
	purchase, customer := sf["purchase"].(map[string]any), sf["customer"].(map[string]any)
	// The storefront's spelling of the order number varies as real
	// integrations do; the key does not.
	switch {
	case mode == schemas.OrderKeyNumber && variant == 0:
		purchase["order_number"] = "#" + o.key
	case mode == schemas.OrderKeyName && variant == 1:
		purchase["order_number"] = " " + o.key + " "
	}
	if sc.lookalike {
		customer["email"] = "  " + strings.ToUpper(p.Email) + " "
		purchase["subtotal"] = json.Number(purchase["subtotal"].(string) + "0")
		purchase["currency_iso_code"] = strings.ToLower(p.Currency)
		purchase["shipping_zip"] = strings.ToLower(strings.ReplaceAll(p.Address.Zip, " ", ""))
		purchase["coupon_code"] = strings.ToLower(p.Coupon)
	}
	o.storefront = encode(sf)
	o.sfSubtotal, o.sfCurrency = fmt.Sprint(purchase["subtotal"]), p.Currency

	wh := decode(o.webhook)
	o.whSubtotal = wh["subtotal_price_set"].(map[string]any)["presentment_money"].(map[string]any)["amount"].(string)
	o.whCurrency = wh["presentment_currency"].(string)

	if variant == 0 {
		o.malformed = fmt.Appendf(nil, `{"purchase":{"order_number":%q,"subtotal":"twelve euros"},"customer":{"email":"a@example.com"}}`, o.key)
	} else {
		o.malformed = o.storefront[:len(o.storefront)/2] // cut off, as by a closed tab
	}
	return o
}

func decode(b []byte) map[string]any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // ids above 2^53 keep their digits
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		panic("BUG: a synthetic body does not decode: " + err.Error())
	}
	return m
}

func encode(m map[string]any) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic("BUG: a synthetic body does not encode: " + err.Error())
	}
	return b
}
