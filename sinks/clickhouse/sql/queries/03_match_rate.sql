-- Match rate per site over the last 7 days: purchases seen by both the
-- storefront and Shopify, over all purchases.
SELECT
    site,
    sum(purchases) AS total,
    sum(matched_purchases) AS matched,
    matched / total AS match_rate
FROM match_rate_daily
WHERE day >= today() - 7
GROUP BY site
ORDER BY match_rate, site
