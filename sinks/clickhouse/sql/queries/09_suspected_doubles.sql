-- Which sites register purchases twice because their storefront sends
-- another order key than their order_key mode, and since when? Per site:
-- suspected doubles, how many are marked (purchasesync sites repair -mark),
-- and the first and last day. Detail per purchase: the view
-- suspected_double_registrations.
SELECT
    site,
    sum(suspected_doubles) AS suspected_doubles,
    sum(marked_doubles) AS marked_doubles,
    min(day) AS first_day,
    max(day) AS last_day
FROM suspected_double_registrations_daily
GROUP BY site
ORDER BY suspected_doubles DESC, site
