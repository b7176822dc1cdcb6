package schemas

import "time"

// TopicSpec is how `purchasesync migrate` creates a topic.
type TopicSpec struct {
	Name string // without prefix
	// CoPartitioned topics share one partition count, so that both events of
	// a purchase (and its join state) land in the same partition number.
	CoPartitioned bool
	Compacted     bool
	Retention     time.Duration // 0 = broker default; ignored for compacted topics
}

// TopicSpecs lists every topic of DESIGN §2.
func TopicSpecs() []TopicSpec {
	// Raw topics keep 30 days: longer than any outage we would replay over,
	// and replay (purchasesync replay) reads them from a point in time.
	return []TopicSpec{
		{Name: TopicShopifyOrders, CoPartitioned: true, Retention: 30 * 24 * time.Hour},
		{Name: TopicStorefrontPurchases, CoPartitioned: true, Retention: 30 * 24 * time.Hour},
		{Name: TopicJoinState, CoPartitioned: true, Compacted: true},
		{Name: TopicPurchases, CoPartitioned: true, Retention: 30 * 24 * time.Hour},
		{Name: TopicDiscrepancies, CoPartitioned: true, Retention: 30 * 24 * time.Hour},
		{Name: TopicShopifyUnrouted, Retention: 30 * 24 * time.Hour},
		// The refund router's input is also its changelog: it restores by
		// reading it from the start, so retention must exceed its index
		// horizon plus its order wait (refundroute.Config.Validate). It
		// takes the raw topics' partition count not for co-location (the
		// router re-keys what it writes) but so that the routers scale, and
		// restore in parallel, as the joins do.
		{Name: TopicShopifyOrderIDs, CoPartitioned: true, Retention: 30 * 24 * time.Hour},
		{Name: TopicCompliance, Retention: 90 * 24 * time.Hour},
		{Name: TopicDeadLetter, Retention: 30 * 24 * time.Hour},
		{Name: TopicSites, Compacted: true},
		// Uninstalls are few; the topic is also their record.
		{Name: TopicShopifyApp, Retention: 90 * 24 * time.Hour},
		{Name: TopicShopifyTokens, Compacted: true},
		// The order-key detector: observations and its changelog share a
		// partition count (a partition's state is restored from the same
		// partition number); observations are a buffer, a week is plenty.
		{Name: TopicKeyModeObservations, CoPartitioned: true, Retention: 7 * 24 * time.Hour},
		{Name: TopicKeyModeState, CoPartitioned: true, Compacted: true},
		{Name: TopicKeyModeEvidence, Compacted: true},
	}
}
