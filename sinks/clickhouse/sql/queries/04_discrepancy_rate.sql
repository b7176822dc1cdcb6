-- Which fields disagree most, per site, over the last 7 days: discrepancies
-- over the purchases matched in the same days.
SELECT
    site,
    field,
    sum(discrepancies) AS discrepancy_count,
    sum(matched_purchases) AS matched,
    if(matched = 0, 0, discrepancy_count / matched) AS discrepancy_rate
FROM discrepancy_rate_daily
WHERE day >= today() - 7
GROUP BY site, field
ORDER BY discrepancy_count DESC, site, field
