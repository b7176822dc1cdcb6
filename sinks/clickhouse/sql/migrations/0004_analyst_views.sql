-- Views for analysts (README "Analyst queries"). Each reads the tables with
-- FINAL, so a purchase counts once whatever merges have run; test orders are
-- left out. Days are UTC.

-- Purchases per day and site, by how they were registered.
CREATE VIEW IF NOT EXISTS purchases_daily AS
SELECT
    toDate(registered_at) AS day,
    site,
    registered_via,
    count() AS purchases,
    countIf(matched = 1) AS matched_purchases
FROM purchases FINAL
WHERE test = 0
GROUP BY day, site, registered_via;

-- Match rate: the share of purchases seen by both the storefront and Shopify.
CREATE VIEW IF NOT EXISTS match_rate_daily AS
SELECT
    toDate(registered_at) AS day,
    site,
    count() AS purchases,
    countIf(matched = 1) AS matched_purchases,
    countIf(matched = 1) / count() AS match_rate
FROM purchases FINAL
WHERE test = 0
GROUP BY day, site;

-- Browser misses: purchases the storefront JavaScript never registered in
-- time, registered from the webhook or by reconciliation instead.
CREATE VIEW IF NOT EXISTS browser_miss_daily AS
SELECT
    toDate(registered_at) AS day,
    site,
    count() AS purchases,
    countIf(registered_via = 'webhook') AS webhook_registered,
    countIf(registered_via = 'reconciliation') AS reconciliation_registered,
    countIf(registered_via != 'storefront') / count() AS browser_miss_rate
FROM purchases FINAL
WHERE test = 0
GROUP BY day, site;

-- Discrepancies per day, site and field, over the purchases matched that day
-- (only a matched purchase can have a field mismatch). webhook_missing has no
-- field and is reported under field = 'webhook_missing'.
CREATE VIEW IF NOT EXISTS discrepancy_rate_daily AS
SELECT
    day,
    site,
    field_or_kind AS field,
    discrepancies,
    matched_purchases,
    if(matched_purchases = 0, 0, discrepancies / matched_purchases) AS discrepancy_rate
FROM
(
    SELECT
        toDate(detected_at) AS day,
        site,
        if(kind = 'webhook_missing', 'webhook_missing', field) AS field_or_kind,
        count() AS discrepancies
    FROM discrepancies FINAL
    WHERE test = 0
    GROUP BY day, site, field_or_kind
) AS d
ANY LEFT JOIN
(
    SELECT
        toDate(registered_at) AS day,
        site,
        countIf(matched = 1) AS matched_purchases
    FROM purchases FINAL
    WHERE test = 0
    GROUP BY day, site
) AS m USING (day, site);

-- Webhook delay: how long after the order was created Shopify's
-- orders/create webhook reached ingest, per day and site (seconds).
CREATE VIEW IF NOT EXISTS webhook_delay_daily AS
SELECT
    toDate(received_at) AS day,
    site,
    count() AS webhooks,
    quantile(0.5)(dateDiff('second', assumeNotNull(order_created_at), received_at)) AS delay_p50_s,
    quantile(0.99)(dateDiff('second', assumeNotNull(order_created_at), received_at)) AS delay_p99_s,
    max(dateDiff('second', assumeNotNull(order_created_at), received_at)) AS delay_max_s
FROM raw_events FINAL
WHERE source = 'shopify' AND shopify_topic = 'orders/create' AND isNotNull(order_created_at)
GROUP BY day, site;
