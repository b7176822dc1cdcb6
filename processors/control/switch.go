package control

import (
	"context"
	"errors"
	"fmt"

	"purchasesync/processors/control/adminapi"
	"purchasesync/schemas"
)

// subscriptionTopics are the webhook topics Purchase Syncing needs
// (schemas.WebhookTopics with a GraphQL enum); the first one's id, the
// orders/create subscription's, is the site record's webhook_subscription_id.
var subscriptionTopics = schemas.SubscribedWebhookTopics()

// Enable turns Purchase Syncing on for site (DESIGN §7). Without
// read_orders it fails with ErrMissingScope and changes nothing.
func (s *Service) Enable(ctx context.Context, site string) (schemas.Site, error) {
	out, err := s.enable(ctx, site)
	s.count("enable", err)
	return out, err
}

// Disable turns Purchase Syncing off for site.
func (s *Service) Disable(ctx context.Context, site string) (schemas.Site, error) {
	out, err := s.disable(ctx, site)
	s.count("disable", err)
	return out, err
}

func (s *Service) count(action string, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	s.m.switches.WithLabelValues(action, outcome).Inc()
}

func (s *Service) lookup(slug string) (schemas.Site, error) {
	site, ok := s.sites.Get(slug)
	if !ok {
		return schemas.Site{}, withStatus(404, fmt.Errorf("%w %q", ErrUnknownSite, slug))
	}
	return site, nil
}

// shopifyStatus maps an Admin API failure to the admin API's status:
// missing or rejected tokens need an operator (409), the rest is Shopify's.
func shopifyStatus(err error) error {
	if errors.Is(err, adminapi.ErrNoToken) || errors.Is(err, adminapi.ErrUnauthorized) {
		return withStatus(statusPrecondition, err)
	}
	return withStatus(statusShopify, err)
}

func (s *Service) enable(ctx context.Context, slug string) (schemas.Site, error) {
	unlock := s.lock(slug)
	defer unlock()
	site, err := s.lookup(slug)
	if err != nil {
		return schemas.Site{}, err
	}
	if s.cfg.CallbackURL() == "" {
		return schemas.Site{}, withStatus(statusPrecondition, ErrNoCallbackURL)
	}
	scopes, err := s.shopify.AccessScopes(ctx, site.ShopDomain)
	if err != nil {
		return schemas.Site{}, shopifyStatus(fmt.Errorf("cannot read the granted permissions of %s: %w", site.ShopDomain, err))
	}
	if !adminapi.HasScope(scopes, "read_orders") {
		return schemas.Site{}, withStatus(statusPrecondition, fmt.Errorf("cannot enable purchase syncing for site %s (%s): %w", slug, site.ShopDomain, ErrMissingScope))
	}
	var ordersID string
	for _, topic := range subscriptionTopics {
		id, created, err := s.ensureSubscription(ctx, site, topic)
		if err != nil {
			return schemas.Site{}, shopifyStatus(fmt.Errorf("cannot subscribe %s to %s: %w", site.ShopDomain, topic, err))
		}
		if created {
			s.log.Info("webhook subscription created", "site", slug, "topic", topic, "id", id)
		}
		if topic == adminapi.TopicOrdersCreate {
			ordersID = id
		}
	}
	s.markOK(slug, s.now())
	if site.PurchaseSyncing && site.WebhookSubscriptionID == ordersID {
		return site, nil // already on: nothing to write
	}
	site.PurchaseSyncing, site.WebhookSubscriptionID = true, ordersID
	stored, err := s.store(ctx, site)
	if err != nil {
		// The subscriptions exist; a retry finds them and only writes.
		return schemas.Site{}, withStatus(statusKafka, fmt.Errorf("cannot store site %s (its webhook subscriptions exist; retry enabling): %w", slug, err))
	}
	s.log.Info("purchase syncing enabled", "site", slug, "shop_domain", site.ShopDomain, "subscription", ordersID)
	return stored, nil
}

// ensureSubscription finds our subscription to topic (same callback URL)
// or creates it. Extra ones are deleted: each would deliver every order
// again. created reports whether this call created it.
func (s *Service) ensureSubscription(ctx context.Context, site schemas.Site, topic string) (id string, created bool, err error) {
	callback := s.cfg.CallbackURL()
	all, err := s.ourSubscriptions(ctx, site, topic, callback, site.WebhookSubscriptionID)
	if err != nil {
		return "", false, err
	}
	// The recorded subscription may point at an old public URL (the base
	// URL changed): it would deliver every order a second time, to a URL
	// that may no longer be ours.
	var ours []adminapi.WebhookSubscription
	for _, sub := range all {
		if sub.URI == callback {
			ours = append(ours, sub)
			continue
		}
		if _, err := s.shopify.DeleteWebhookSubscription(ctx, site.ShopDomain, sub.ID); err != nil {
			return "", false, err
		}
		s.log.Warn("webhook subscription to an old callback URL deleted", "site", site.Site, "topic", topic, "id", sub.ID, "uri", sub.URI)
	}
	if len(ours) == 0 {
		sub, err := s.shopify.CreateWebhookSubscription(ctx, site.ShopDomain, topic, callback)
		if adminapi.IsTaken(err) {
			// Created meanwhile by a racing call: use that one.
			if ours, err = s.ourSubscriptions(ctx, site, topic, callback, ""); err == nil && len(ours) > 0 {
				return ours[0].ID, false, nil
			}
		}
		if err != nil {
			return "", false, err
		}
		return sub.ID, true, nil
	}
	keep := ours[0]
	for _, o := range ours {
		if o.ID == site.WebhookSubscriptionID {
			keep = o
		}
	}
	for _, o := range ours {
		if o.ID != keep.ID {
			if _, err := s.shopify.DeleteWebhookSubscription(ctx, site.ShopDomain, o.ID); err != nil {
				return "", false, err
			}
			s.log.Warn("duplicate webhook subscription deleted", "site", site.Site, "topic", topic, "id", o.ID)
		}
	}
	return keep.ID, false, nil
}

// ourSubscriptions lists the subscriptions to topic that point at callback
// or carry id.
func (s *Service) ourSubscriptions(ctx context.Context, site schemas.Site, topic, callback, id string) ([]adminapi.WebhookSubscription, error) {
	subs, err := s.shopify.WebhookSubscriptions(ctx, site.ShopDomain, topic)
	if err != nil {
		return nil, err
	}
	var ours []adminapi.WebhookSubscription
	for _, sub := range subs {
		if (callback != "" && sub.URI == callback) || (id != "" && sub.ID == id) {
			ours = append(ours, sub)
		}
	}
	return ours, nil
}

func (s *Service) disable(ctx context.Context, slug string) (schemas.Site, error) {
	unlock := s.lock(slug)
	defer unlock()
	site, err := s.lookup(slug)
	if err != nil {
		return schemas.Site{}, err
	}
	// Subscriptions go first: a failure after this leaves the flag on, so
	// the record never claims "off" while Shopify still delivers.
	if err := s.deleteSubscriptions(ctx, site); err != nil {
		if !errors.Is(err, adminapi.ErrUnauthorized) {
			return schemas.Site{}, shopifyStatus(fmt.Errorf("cannot delete the webhook subscriptions of %s: %w", site.ShopDomain, err))
		}
		// A rejected token means the app was uninstalled (which removes
		// its subscriptions) or the token is gone: nothing is left to
		// delete that we could reach, and the switch must still turn off.
		s.log.Warn("Shopify rejected the token while disabling; clearing the site's flag anyway", "site", slug, "shop_domain", site.ShopDomain)
	}
	if !site.PurchaseSyncing && site.WebhookSubscriptionID == "" {
		return site, nil
	}
	site.PurchaseSyncing, site.WebhookSubscriptionID = false, ""
	stored, err := s.store(ctx, site)
	if err != nil {
		return schemas.Site{}, withStatus(statusKafka, fmt.Errorf("cannot store site %s (its webhook subscriptions are deleted; retry disabling): %w", slug, err))
	}
	s.log.Info("purchase syncing disabled", "site", slug, "shop_domain", site.ShopDomain)
	return stored, nil
}

func (s *Service) deleteSubscriptions(ctx context.Context, site schemas.Site) error {
	for _, topic := range subscriptionTopics {
		ours, err := s.ourSubscriptions(ctx, site, topic, s.cfg.CallbackURL(), site.WebhookSubscriptionID)
		if err != nil {
			return err
		}
		for _, sub := range ours {
			if _, err := s.shopify.DeleteWebhookSubscription(ctx, site.ShopDomain, sub.ID); err != nil {
				return err
			}
			s.log.Info("webhook subscription deleted", "site", site.Site, "topic", topic, "id", sub.ID)
		}
	}
	return nil
}
