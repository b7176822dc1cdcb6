-- Shopify webhooks delivered more than once (same webhook id), per site,
-- last 7 days.
SELECT site, count() AS redelivered_webhooks, sum(deliveries - 1) AS extra_deliveries
FROM
(
    SELECT site, webhook_id, count() AS deliveries
    FROM raw_events FINAL
    WHERE source = 'shopify' AND webhook_id != '' AND received_at >= now() - 7 * 86400
    GROUP BY site, webhook_id
    HAVING deliveries > 1
)
GROUP BY site
ORDER BY extra_deliveries DESC, site
