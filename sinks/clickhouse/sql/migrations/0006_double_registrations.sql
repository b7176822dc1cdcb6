-- Suspected double registrations (README "Order-key diagnosis and repair").
-- A site whose storefront JavaScript sends another Shopify identifier than
-- its order_key mode gets two keys for one order: the storefront purchase
-- (say order_number '#1001') and the Shopify one (the order id), neither
-- matched, both registered. A pair is an unmatched purchase registered from
-- Shopify (webhook or reconciliation) and an unmatched storefront purchase
-- of the same site whose order number is the Shopify order's id, its name,
-- or its name without '#' (what each mode would have keyed it by). The
-- Shopify one is the double: the storefront registration came first and
-- carries the referral. Test orders are left out, as in every view.

-- Marks: a double that an operator confirmed (purchasesync sites repair
-- -mark), so analysts and the purchase registry can undo it. Nothing is
-- deleted: the purchase stays in purchases as it was registered.
CREATE TABLE IF NOT EXISTS double_registration_marks (
    site                    String,
    shopify_order_number    String,
    storefront_order_number String,
    shopify_order_id        String,
    marked_at               DateTime('UTC'),
    marked_by               String,
    note                    String,
    version                 UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (site, shopify_order_number);

CREATE VIEW IF NOT EXISTS suspected_double_registrations AS
SELECT
    site,
    toDate(shopify_registered_at) AS day,
    shopify_order_number,
    storefront_order_number,
    shopify_order_id,
    shopify_order_name,
    shopify_registered_via,
    shopify_registered_at,
    storefront_registered_at,
    marked,
    marked_at
FROM
(
    SELECT *
    FROM
    (
        SELECT
            site,
            order_number AS shopify_order_number,
            ifNull(shopify_order_id, '') AS shopify_order_id,
            shopify_order_name,
            registered_via AS shopify_registered_via,
            registered_at AS shopify_registered_at,
            arrayJoin(arrayFilter(x -> x != '', if(substring(shopify_order_name, 1, 1) = '#',
                [ifNull(shopify_order_id, ''), shopify_order_name, substring(shopify_order_name, 2)],
                [ifNull(shopify_order_id, ''), shopify_order_name]))) AS twin
        FROM purchases FINAL
        WHERE registered_via != 'storefront' AND matched = 0 AND test = 0
    ) AS w
    ALL INNER JOIN
    (
        SELECT
            site,
            order_number AS twin,
            order_number AS storefront_order_number,
            registered_at AS storefront_registered_at
        FROM purchases FINAL
        WHERE registered_via = 'storefront' AND matched = 0 AND test = 0
    ) AS s USING (site, twin)
) AS p
ANY LEFT JOIN
(
    SELECT site, shopify_order_number, toUInt8(1) AS marked, marked_at
    FROM double_registration_marks FINAL
) AS mk USING (site, shopify_order_number);

-- Per site and day: how many, and how many are marked.
CREATE VIEW IF NOT EXISTS suspected_double_registrations_daily AS
SELECT
    day,
    site,
    count() AS suspected_doubles,
    sum(marked) AS marked_doubles
FROM suspected_double_registrations
GROUP BY day, site;
