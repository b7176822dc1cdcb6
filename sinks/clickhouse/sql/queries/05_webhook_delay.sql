-- Shopify webhook delay (received by ingest vs order created), per day and
-- site, last 7 days, in seconds.
SELECT day, site, webhooks, delay_p50_s, delay_p99_s, delay_max_s
FROM webhook_delay_daily
WHERE day >= today() - 7
ORDER BY day, site
