-- One row per Shopify privacy request (customers/redact, shop/redact,
-- customers/data_request), written by the compliance processor when it
-- receives the request (version 1) and again when it completed it
-- (version 2); FINAL keeps the latest. request_id is where the request is in
-- Kafka (compliance.v1 topic/partition/offset), so a request redone after a
-- crash keeps one row. No personal data: no email, no customer id.
-- Unpartitioned, like purchases: the key must never move.
CREATE TABLE IF NOT EXISTS compliance_requests (
    request_id      String,
    topic           String,
    shop_domain     String,
    sites           Array(String),
    status          Enum8('received' = 1, 'completed' = 2),
    orders_affected UInt64,
    received_at     DateTime('UTC'),
    completed_at    DateTime('UTC'),
    version         UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY request_id;
