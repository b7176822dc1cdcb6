-- One row per registered purchase (DESIGN §4). Every change of a purchase
-- (a later match, a refund) is inserted again with a higher version; FINAL or
-- a merge keeps the highest. No PARTITION BY: ReplacingMergeTree only
-- collapses rows within one partition, so the key must never move.
-- Portable types only (ClickHouse 18.16 and current): see README "Schema".
CREATE TABLE IF NOT EXISTS purchases (
    site               String,
    order_number       String,
    shopify_order_id   Nullable(String),
    shopify_order_name String,
    registered_via     Enum8('storefront' = 1, 'webhook' = 2, 'reconciliation' = 3),
    matched            UInt8,
    email              String,
    customer_id        String,
    first_name         String,
    last_name          String,
    subtotal           Nullable(Decimal(18, 4)),
    currency           String,
    tax                Nullable(Decimal(18, 4)),
    discount_amount    Nullable(Decimal(18, 4)),
    shipping_cost      Nullable(Decimal(18, 4)),
    coupon_codes       Array(String),
    shipping_zip       String,
    shipping_address   String,
    items_product_id   Array(String),
    items_variant_id   Array(String),
    items_sku          Array(String),
    items_title        Array(String),
    items_price        Array(Nullable(Decimal(18, 4))),
    items_quantity     Array(Int64),
    ip_address         String,
    traffic_source     String,
    test               UInt8,
    refunded_amount    Nullable(Decimal(18, 4)),
    refunded_at        Nullable(DateTime('UTC')),
    order_created_at   Nullable(DateTime('UTC')),
    registered_at      DateTime('UTC'),
    received_at        Nullable(DateTime('UTC')),
    updated_at         DateTime('UTC'),
    version            UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (site, order_number);
