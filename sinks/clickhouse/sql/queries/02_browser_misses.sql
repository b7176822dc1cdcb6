-- How many purchases did the browser miss, where, and since when?
-- Per site: purchases the storefront never registered, the share they make
-- up, and the first and last day it happened.
SELECT
    site,
    sum(purchases) AS purchases,
    sum(webhook_registered + reconciliation_registered) AS browser_missed,
    browser_missed / purchases AS browser_miss_rate,
    minIf(day, webhook_registered + reconciliation_registered > 0) AS first_miss_day,
    maxIf(day, webhook_registered + reconciliation_registered > 0) AS last_miss_day
FROM browser_miss_daily
GROUP BY site
HAVING browser_missed > 0
ORDER BY browser_missed DESC, site
