-- Purchases per day and site by how they were registered, last 30 days.
SELECT day, site, registered_via, purchases, matched_purchases
FROM purchases_daily
WHERE day >= today() - 30
ORDER BY day, site, registered_via
