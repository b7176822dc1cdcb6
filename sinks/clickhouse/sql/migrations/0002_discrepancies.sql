-- One row per (purchase, kind, field) where the storefront and Shopify
-- disagree. No version column: a replay writes the same row again and the
-- last one wins. Unpartitioned for the same reason as purchases: detected_at
-- may differ between a replay and the original.
CREATE TABLE IF NOT EXISTS discrepancies (
    site             String,
    order_number     String,
    kind             Enum8('field_mismatch' = 1, 'webhook_missing' = 2),
    field            String,
    storefront_value String,
    shopify_value    String,
    test             UInt8,
    detected_at      DateTime('UTC')
) ENGINE = ReplacingMergeTree
ORDER BY (site, order_number, kind, field);
