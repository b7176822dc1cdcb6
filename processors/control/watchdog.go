package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"purchasesync/processors/control/adminapi"
)

// gapLead: Shopify removes a subscription after 8 failed deliveries over
// 4 hours, so orders were going undelivered for about that long before the
// subscription was last seen missing; a gap's reconciliation starts this
// long before the last time the subscription was seen in place.
const gapLead = 5 * time.Hour

func (s *Service) watchdogLoop(ctx context.Context) error {
	t := time.NewTimer(0) // first check at start: the process may have been down
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.CheckSubscriptions(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("subscription watchdog: some sites could not be checked", "err", err)
		}
		t.Reset(s.cfg.WatchdogInterval)
	}
}

// CheckSubscriptions runs one watchdog pass over every enabled site and
// returns the sites' errors joined (one failing shop does not stop the rest).
func (s *Service) CheckSubscriptions(ctx context.Context) error {
	var errs []error
	for _, site := range s.sites.All() {
		if !site.PurchaseSyncing {
			continue
		}
		outcome, err := s.checkSite(ctx, site.Site)
		s.m.watchdogChecks.WithLabelValues(outcome).Inc()
		if err != nil {
			errs = append(errs, fmt.Errorf("site %s: %w", site.Site, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Service) checkSite(ctx context.Context, slug string) (outcome string, err error) {
	unlock := s.lock(slug)
	defer unlock()
	site, ok := s.sites.Get(slug)
	if !ok || !site.PurchaseSyncing {
		return "ok", nil // disabled or removed since the list was taken
	}
	if s.cfg.CallbackURL() == "" {
		return "error", ErrNoCallbackURL
	}
	now := s.now()
	outcome = "ok"
	var ordersID string
	for _, topic := range subscriptionTopics {
		id, created, err := s.ensureSubscription(ctx, site, topic)
		if err != nil {
			return "error", fmt.Errorf("cannot verify the %s subscription of %s: %w", topic, site.ShopDomain, err)
		}
		if topic == adminapi.TopicOrdersCreate {
			ordersID = id
		}
		if !created {
			continue
		}
		outcome = "recreated"
		s.m.recreated.WithLabelValues(topic).Inc()
		if topic != adminapi.TopicOrdersCreate {
			s.log.Warn("webhook subscription was missing; recreated", "site", slug, "topic", topic, "id", id)
			continue
		}
		// The gap: orders created while nothing was subscribed never came.
		s.m.gaps.Inc()
		last, known := s.lastSeenOK(slug)
		since := now.Add(-s.cfg.MaxLookback)
		if known {
			since = last.Add(-gapLead)
		}
		attrs := []any{"site", slug, "topic", topic, "id", id, "detected_at", now.UTC().Format(time.RFC3339), "reconcile_since", since.UTC().Format(time.RFC3339)}
		if known {
			attrs = append(attrs, "last_seen_in_place", last.UTC().Format(time.RFC3339))
		}
		s.log.Warn("webhook subscription was missing (Shopify removes one after repeated failed deliveries); recreated, reconciling the gap", attrs...)
		s.Trigger(slug, since)
	}
	s.markOK(slug, now)
	if ordersID != site.WebhookSubscriptionID {
		site.WebhookSubscriptionID = ordersID
		if _, err := s.store(ctx, site); err != nil {
			return "error", fmt.Errorf("cannot store the new subscription id of site %s: %w", slug, err)
		}
	}
	return outcome, nil
}

// Trigger asks the reconciliation loop for a pass over one site from since
// (capped at MaxLookback). It never blocks: a full queue drops the request,
// and the periodic passes cover the recent window anyway.
func (s *Service) Trigger(site string, since time.Time) {
	if s.seen == nil {
		s.log.Warn("reconciliation is off (no producer); a subscription gap stays unreconciled", "site", site)
		return
	}
	select {
	case s.triggers <- trigger{site: site, since: since}:
	default:
		s.log.Warn("reconciliation queue full; dropping a triggered pass", "site", site)
	}
}
