package main

import (
	"context"
	"fmt"
	"time"

	"purchasesync/processors/refundroute"
)

// refundFlags are the refund router's flags. It runs in the join process
// (and in `run`): it is the join's feeder for order_number and order_name
// sites' refunds, scales the same way (a consumer group), and shares the
// join's instance name.
type refundFlags struct {
	group        *string
	orderWait    *time.Duration
	indexHorizon *time.Duration
}

func addRefundFlags(fs *flagSet) *refundFlags {
	d := refundroute.DefaultConfig()
	return &refundFlags{
		group: fs.String("refundroute.group", d.Group, "consumer group of the refund routers (one runs in each join process; its transactional id is purchasesync-refundroute-<join.instance>); empty: <-kafka.topicPrefix without its dot>-refundroute, so purchasesync-refundroute by default"),
		orderWait: fs.Duration("refundroute.orderWait", d.OrderWait,
			"how long (in the received-at time of later records) a refund of an order_number/order_name site waits for its order's index before it goes to shopify.unrouted.v1 with reason refund_order_unknown"),
		indexHorizon: fs.Duration("refundroute.indexHorizon", d.IndexHorizon,
			"how long an order's index (order id → order number) is remembered for its refunds; keep it at least -join.dedupeHorizon. orderWait + indexHorizon must stay a day below the 30-day retention of shopify.order_ids.v1"),
	}
}

// config is the refund router's configuration from the flags; instance is
// the join's (-join.instance).
func (f *refundFlags) config(c *common, instance string) refundroute.Config {
	cfg := refundroute.DefaultConfig()
	cfg.Topics, cfg.Instance, cfg.Group = c.topics, instance, *f.group
	cfg.OrderWait, cfg.IndexHorizon = *f.orderWait, *f.indexHorizon
	return cfg
}

func (f *refundFlags) build(c *common, instance string) (*refundroute.Router, error) {
	r, err := refundroute.New(f.config(c, instance), refundroute.Deps{
		KafkaOpts:   c.kafka.baseOpts(c.log, nil, "refundroute"),
		SessionOpts: c.kafka.hooks(c.reg, "refundroute"),
		Registerer:  c.stageReg("refundroute"),
		Logger:      c.log.With("component", "refundroute"),
	})
	if err != nil {
		return nil, fmt.Errorf("cannot configure the refund router: %w", err)
	}
	return r, nil
}

func refundActor(r *refundroute.Router) actor {
	return actor{"refund router", func(ctx context.Context) error { return r.Run(ctx) }, r.Ready}
}
