package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/processors/control/adminapi"
	"purchasesync/schemas"
	"purchasesync/schemas/retry"
)

// catchUpTimeout bounds how long a pass waits for the follower of
// shopify.orders.v1 (at start it may read up to MaxLookback of the topic).
const catchUpTimeout = 2 * time.Minute

// ReconcileResult counts one pass over one site.
type ReconcileResult struct {
	Checked   int // orders listed
	Recovered int // orders produced because the pipeline never saw them
}

func (s *Service) reconcileLoop(ctx context.Context) error {
	var tick <-chan time.Time
	if s.cfg.ReconcileInterval > 0 {
		t := time.NewTicker(s.cfg.ReconcileInterval)
		defer t.Stop()
		tick = t.C
		// A first pass right away: the process may have been down.
		if err := s.ReconcileAll(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("reconciliation: some sites failed", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			if err := s.ReconcileAll(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("reconciliation: some sites failed", "err", err)
			}
		case tr := <-s.triggers:
			now := s.now()
			_, err := s.pass(ctx, tr.site, tr.since, now.Add(-s.cfg.ReconcileMinAge), true)
			switch {
			case ctx.Err() != nil:
			case err != nil:
				s.retryLater(ctx, tr, err)
			case tr.attempts > 0:
				s.log.Info("reconciliation after a subscription gap done after retrying", "site", tr.site, "attempts", tr.attempts+1)
			}
		}
	}
}

// retryLater queues a failed triggered pass again after a backoff: a gap
// can reach further back than the periodic passes look, so dropping it
// (Kafka or Shopify away for a while) would lose its orders. The first
// failure is logged; the retries are not.
func (s *Service) retryLater(ctx context.Context, tr trigger, err error) {
	tr.attempts++
	d := retry.Delay(tr.attempts, s.cfg.RetryInitial, s.cfg.RetryMax)
	if tr.attempts == 1 {
		s.log.Warn("reconciliation after a subscription gap failed; retrying by itself", "site", tr.site, "retry_in", d.String(), "err", err)
	}
	time.AfterFunc(d, func() {
		if ctx.Err() != nil {
			return
		}
		select {
		case s.triggers <- tr:
		default:
			s.log.Warn("reconciliation queue full; dropping a retried pass", "site", tr.site)
		}
	})
}

// ReconcileAll runs a periodic pass over every enabled site, over
// [now-ReconcileWindow, now-ReconcileMinAge].
func (s *Service) ReconcileAll(ctx context.Context) error {
	now := s.now()
	var errs []error
	for _, site := range s.sites.All() {
		if !site.PurchaseSyncing {
			continue
		}
		if _, err := s.Reconcile(ctx, site.Site, now.Add(-s.cfg.ReconcileWindow), now.Add(-s.cfg.ReconcileMinAge)); err != nil {
			errs = append(errs, fmt.Errorf("site %s: %w", site.Site, err))
		}
	}
	return errors.Join(errs...)
}

// Reconcile lists the site's orders created in [from, to] and produces
// into shopify.orders.v1 each one whose key the topic does not hold. from
// is capped at MaxLookback. The site must have purchase syncing on: ingest
// does not route a disabled site's orders to the join either.
func (s *Service) Reconcile(ctx context.Context, slug string, from, to time.Time) (ReconcileResult, error) {
	return s.pass(ctx, slug, from, to, false)
}

// pass is Reconcile; quiet leaves a failure to the caller to log.
func (s *Service) pass(ctx context.Context, slug string, from, to time.Time, quiet bool) (ReconcileResult, error) {
	res, err := s.reconcile(ctx, slug, from, to)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	s.m.passes.WithLabelValues(outcome).Inc()
	if res.Recovered > 0 || (err != nil && !quiet) {
		s.log.Info("reconciliation pass", "site", slug, "checked", res.Checked, "recovered", res.Recovered, "err", err)
	}
	return res, err
}

func (s *Service) reconcile(ctx context.Context, slug string, from, to time.Time) (ReconcileResult, error) {
	var res ReconcileResult
	if s.seen == nil {
		return res, errors.New("reconciliation is off: no Kafka producer was configured")
	}
	s.passMu.Lock()
	defer s.passMu.Unlock()
	site, err := s.lookup(slug)
	if err != nil {
		return res, err
	}
	if !site.PurchaseSyncing {
		return res, fmt.Errorf("site %s has purchase syncing off", slug)
	}
	if floor := s.now().Add(-s.cfg.MaxLookback); from.Before(floor) {
		from = floor
	}
	if !from.Before(to) {
		return res, nil
	}
	wctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	err = s.seen.waitCaughtUp(wctx, kadm.NewClient(s.producer))
	cancel()
	if err != nil {
		return res, fmt.Errorf("cannot reconcile site %s: %w", slug, err)
	}

	q := adminapi.OrdersQuery{CreatedFrom: from, CreatedTo: to, PageSize: s.cfg.PageSize}
	for after := ""; ; {
		page, err := s.shopify.OrderRefs(ctx, site.ShopDomain, q, after)
		if err != nil {
			return res, fmt.Errorf("cannot list orders of %s: %w", site.ShopDomain, err)
		}
		for _, ref := range page.Orders {
			res.Checked++
			s.m.checked.Inc()
			recovered, err := s.recoverOrder(ctx, site, ref)
			if err != nil {
				return res, err
			}
			if recovered {
				res.Recovered++
				s.m.recovered.Inc()
			}
		}
		if !page.HasNextPage {
			return res, nil
		}
		after = page.EndCursor
	}
}

// refKey is the pipeline key an order gets in the site's order_key mode,
// computed by the same schemas code ingest uses.
func refKey(site schemas.Site, ref adminapi.OrderRef) (string, error) {
	o := schemas.ShopifyOrder{ID: schemas.FlexString(ref.LegacyResourceID), OrderNumber: schemas.FlexString(ref.Number.String()), Name: ref.Name}
	v, err := o.OrderKeyValue(site.OrderKey)
	if err != nil {
		return "", err
	}
	return schemas.Key(site.Site, v), nil
}

// recoverOrder produces ref's order unless the pipeline saw its key.
func (s *Service) recoverOrder(ctx context.Context, site schemas.Site, ref adminapi.OrderRef) (bool, error) {
	key, err := refKey(site, ref)
	if err != nil {
		s.log.Warn("reconciliation: order without a usable key; skipped", "site", site.Site, "order_id", ref.LegacyResourceID, "err", err)
		return false, nil
	}
	if s.seen.has(key) {
		return false, nil
	}
	order, err := s.shopify.Order(ctx, site.ShopDomain, ref.ID, s.cfg.LineItems)
	if errors.Is(err, adminapi.ErrOrderNotFound) {
		return false, nil // deleted since it was listed
	}
	if err != nil {
		return false, fmt.Errorf("cannot fetch order %s of %s: %w", ref.ID, site.ShopDomain, err)
	}
	body, err := adminapi.RESTOrderJSON(order)
	if err != nil {
		return false, err
	}
	// The body goes through the parser the join uses (a record it could not
	// read would be a poison record, better refused here), and the record's
	// key comes from the body exactly as ingest derives it.
	if _, err := schemas.ParseShopifyOrder(body); err != nil {
		return false, fmt.Errorf("BUG: reconciled order %s does not parse: %w", ref.ID, err)
	}
	orderNumber, err := schemas.ShopifyOrderKey(body, site.OrderKey)
	if err != nil {
		return false, fmt.Errorf("BUG: reconciled order %s has no key: %w", ref.ID, err)
	}
	if k := schemas.Key(site.Site, orderNumber); k != key {
		s.log.Warn("reconciliation: order key changed between listing and fetching", "site", site.Site, "order_id", ref.LegacyResourceID)
		if s.seen.has(k) {
			return false, nil
		}
		key = k
	}
	now := s.now().UTC()
	// Synthetic ids: stable per order, so a replay or a second recovery of
	// the same order is recognisable as a repeat.
	synthetic := []byte("reconciled-" + ref.LegacyResourceID)
	wh := schemas.WebhookHeaders{
		ShopDomain:  []byte(site.ShopDomain),
		WebhookID:   synthetic,
		EventID:     synthetic,
		Topic:       []byte(schemas.WebhookOrdersCreate),
		APIVersion:  []byte(s.shopify.APIVersion()),
		TriggeredAt: []byte(order.CreatedAt),
		ReceivedAt:  schemas.AppendReceivedAt(nil, now),
		Reconciled:  true,
	}
	rec := &kgo.Record{
		Topic:   s.cfg.Topics.Name(schemas.TopicShopifyOrders),
		Key:     []byte(key),
		Value:   body,
		Headers: schemas.AppendWebhookHeaders([]kgo.RecordHeader(nil), &wh),
	}
	recs := []*kgo.Record{rec}
	if id := string(order.LegacyResourceID); site.OrderKey != schemas.OrderKeyID && site.OrderKey != "" && id != "" {
		// The order's index record, as ingest writes it for a webhook:
		// refunds name the order by id alone (processors/refundroute).
		ix, n := schemas.OrderIndexHeaders[kgo.RecordHeader](&wh)
		recs = append(recs, &kgo.Record{
			Topic:   s.cfg.Topics.Name(schemas.TopicShopifyOrderIDs),
			Key:     []byte(schemas.Key(site.Site, id)),
			Value:   []byte(orderNumber),
			Headers: ix[:n],
		})
	}
	if err := s.producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return false, fmt.Errorf("cannot produce reconciled order %s to %s: %w", ref.ID, s.cfg.Topics.Name(schemas.TopicShopifyOrders), err)
	}
	s.seen.add(key)
	s.log.Info("order recovered by reconciliation", "site", site.Site, "order_id", ref.LegacyResourceID, "name", ref.Name, "created_at", ref.CreatedAt)
	return true, nil
}
