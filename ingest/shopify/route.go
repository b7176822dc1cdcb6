package shopify

import (
	"strings"

	"purchasesync/schemas"
)

// Webhook topics (the X-Shopify-Topic values); schemas.WebhookTopics says
// where each goes.
const (
	TopicOrdersCreate         = schemas.WebhookOrdersCreate
	TopicRefundsCreate        = schemas.WebhookRefundsCreate
	TopicCustomersDataRequest = schemas.WebhookCustomersDataRequest
	TopicCustomersRedact      = schemas.WebhookCustomersRedact
	TopicShopRedact           = schemas.WebhookShopRedact
	TopicAppUninstalled       = schemas.WebhookAppUninstalled
)

// Reasons, the "reason" header of records on shopify.unrouted.v1. They are
// metric label values too, so the set is closed.
const (
	ReasonTopicNotHandled = "topic_not_handled" // a topic the pipeline does not consume
	ReasonUnknownShop     = "unknown_shop"      // no site is linked to the shop domain
	ReasonSyncingDisabled = "syncing_disabled"  // the site has purchase_syncing off
	ReasonUnparsable      = "unparsable_body"   // signed, but no key can be read from it
	// ReasonShopMismatch: a compliance request whose signed body names
	// another shop than the (unsigned) shop header. The compliance
	// processor acts on the body's shop_domain, so a custom app's secret,
	// bound to the header's shop, must not sign a redaction of another shop.
	ReasonShopMismatch = "shop_mismatch"
)

// Reasons lists every reason, for metrics initialisation and docs.
var Reasons = []string{ReasonTopicNotHandled, ReasonUnknownShop, ReasonSyncingDisabled, ReasonUnparsable, ReasonShopMismatch}

// Destination is the raw topic a verified webhook goes to.
type Destination uint8

// The destinations (DESIGN §2).
const (
	// ToUnrouted is shopify.unrouted.v1, keyed by shop domain, with a reason.
	ToUnrouted Destination = iota
	// ToOrders is shopify.orders.v1, keyed site/order_number.
	ToOrders
	// ToCompliance is compliance.v1, keyed by shop domain.
	ToCompliance
	// ToOrderIDs is shopify.order_ids.v1, keyed site/<Shopify order id>:
	// the refunds of sites whose order_key is not the id, for the refund
	// router to key by their order's number.
	ToOrderIDs
	// ToApp is shopify.app.v1, keyed by shop domain: app/uninstalled, for
	// every shop, whatever its site says (none, syncing off).
	ToApp
)

// Topic returns the topic name (without prefix) of d.
func (d Destination) Topic() string {
	switch d {
	case ToOrders:
		return schemas.TopicShopifyOrders
	case ToCompliance:
		return schemas.TopicCompliance
	case ToOrderIDs:
		return schemas.TopicShopifyOrderIDs
	case ToApp:
		return schemas.TopicShopifyApp
	}
	return schemas.TopicShopifyUnrouted
}

// Route is where one webhook goes; Reason is set for ToUnrouted only.
type Route struct {
	Dest   Destination
	Reason string
}

// RouteTopic routes a webhook topic by schemas.WebhookTopics: a topic not
// listed there is unrouted with ReasonTopicNotHandled. Signed webhooks are
// always kept (a 2xx answer and a record), because Shopify retrying them
// would not help and dropping them would lose data we may want later.
func RouteTopic(topic string) Route {
	t, ok := schemas.LookupWebhookTopic(topic)
	switch {
	case !ok:
		return Route{Dest: ToUnrouted, Reason: ReasonTopicNotHandled}
	case t.Kafka == schemas.TopicCompliance:
		return Route{Dest: ToCompliance}
	case t.Kafka == schemas.TopicShopifyApp:
		return Route{Dest: ToApp}
	}
	return Route{Dest: ToOrders}
}

// Sites is the part of the site registry routing needs.
type Sites interface {
	ByShop(domain string) (schemas.Site, bool)
}

// Decision is the full routing of one verified webhook: where it goes and
// under which key.
type Decision struct {
	Route
	Key  string // site/order_number for ToOrders; site/<order id> for ToOrderIDs; the shop domain otherwise
	Site string // the site, for ToOrders and ToOrderIDs
	Shop string // the normalized shop domain
	// IndexKey and IndexValue, set for an orders/create of a site whose
	// order_key is not the id, are the order index record the ingest also
	// writes to shopify.order_ids.v1 (key site/<order id>, value the order
	// number), so that the order's refunds find its key.
	IndexKey, IndexValue string
}

// Decide routes one verified webhook. shop is X-Shopify-Shop-Domain; for
// orders/create the shop's site gives the order_key mode, and the key is
// read from body without a full decode (ids may exceed 2^53), with the
// order's id for its index record in the order_number and order_name
// modes; a refund is keyed by its order_id, on shopify.orders.v1 in the
// order_id mode, else on shopify.order_ids.v1 for the refund router.
func Decide(topic, shop string, body []byte, sites Sites) Decision {
	shop = NormalizeShop(shop)
	r := RouteTopic(topic)
	d := Decision{Route: r, Key: shop, Shop: shop}
	if r.Dest == ToCompliance {
		// An unreadable body still goes to compliance.v1, whose processor
		// records and skips it; a readable one must be about this shop.
		if req, err := schemas.ParseComplianceRequest(topic, body); err == nil && req.ShopDomain != shop {
			return unrouted(shop, ReasonShopMismatch)
		}
	}
	if r.Dest == ToApp {
		// As for compliance: the uninstall processor acts on the shop of
		// the key, so a readable body naming another shop is refused.
		if u, err := schemas.ParseAppUninstalled(body); err == nil && u.ShopDomain != shop {
			return unrouted(shop, ReasonShopMismatch)
		}
	}
	if r.Dest != ToOrders {
		return d
	}
	site, ok := sites.ByShop(shop)
	switch {
	case !ok:
		return unrouted(shop, ReasonUnknownShop)
	case !site.PurchaseSyncing:
		return unrouted(shop, ReasonSyncingDisabled)
	}
	if strings.TrimSpace(topic) == TopicRefundsCreate {
		rf, err := schemas.ParseShopifyRefund(body)
		if err != nil {
			return unrouted(shop, ReasonUnparsable)
		}
		d := Decision{Route: r0(ToOrders), Key: schemas.Key(site.Site, string(rf.OrderID)), Site: site.Site, Shop: shop}
		if site.OrderKey != schemas.OrderKeyID {
			// A refund names its order by id alone: in the other modes the
			// refund router finds the purchase's key from the order's
			// index record (processors/refundroute).
			d.Route = r0(ToOrderIDs)
		}
		return d
	}
	orderNumber, id, err := schemas.ShopifyOrderKeys(body, site.OrderKey)
	if err != nil {
		return unrouted(shop, ReasonUnparsable)
	}
	d = Decision{Route: r, Key: schemas.Key(site.Site, orderNumber), Site: site.Site, Shop: shop}
	if site.OrderKey != schemas.OrderKeyID {
		d.IndexKey, d.IndexValue = schemas.Key(site.Site, id), orderNumber
	}
	return d
}

func r0(d Destination) Route { return Route{Dest: d} }

func unrouted(shop, reason string) Decision {
	return Decision{Route: Route{Dest: ToUnrouted, Reason: reason}, Key: shop, Shop: shop}
}

// NormalizeShop is how a shop domain header is compared with site records
// (which schemas.Site.Normalize lower-cases and trims).
func NormalizeShop(shop string) string {
	shop = strings.TrimSpace(shop)
	for i := 0; i < len(shop); i++ {
		if c := shop[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(shop)
		}
	}
	return shop
}
