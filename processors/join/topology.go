package join

import "purchasesync/schemas"

// topology is the join's topics, in one place:
//
//	inputs   shopify.orders.v1, storefront.purchases.v1   (read_committed, range-assigned)
//	state    join.state.v1                                 (compacted changelog, same partition)
//	outputs  purchases.v1, discrepancies.v1                (same partition as the input)
//	         deadletter.v1                                 (undecodable input, outputs Kafka refuses)
//
// All writes and input offsets commit in one transaction per loop. The
// names are full names, under the deployment's prefix.
type topology struct {
	shopify, storefront      string // the inputs
	state                    string
	purchases, discrepancies string
	deadLetter               string
}

func newTopology(t schemas.Topics) topology {
	return topology{
		shopify:       t.Name(schemas.TopicShopifyOrders),
		storefront:    t.Name(schemas.TopicStorefrontPurchases),
		state:         t.Name(schemas.TopicJoinState),
		purchases:     t.Name(schemas.TopicPurchases),
		discrepancies: t.Name(schemas.TopicDiscrepancies),
		deadLetter:    t.Name(schemas.TopicDeadLetter),
	}
}

// inputs are the topics the join reads.
func (t topology) inputs() []string { return []string{t.shopify, t.storefront} }

// coPartitioned are the topics that must have one partition count: partition
// n of both inputs, of the state and of the outputs belongs to one member.
func (t topology) coPartitioned() []string {
	return []string{t.shopify, t.storefront, t.state, t.purchases, t.discrepancies}
}

// written are the topics the join writes.
func (t topology) written() []string {
	return []string{t.state, t.purchases, t.discrepancies, t.deadLetter}
}
