-- Every event ingest accepted from either source, for audit and analysis.
-- A Kafka record is identified by (topic, partition, offset), so a batch the
-- sink retries collapses to one row per record; Shopify's own redeliveries
-- are separate records and stay separate rows (count them by webhook_id).
-- Partitioned by month of received_at, which a retry never changes, so that
-- old months can be dropped (ALTER TABLE raw_events DROP PARTITION 202601)
-- on servers without TTL.
CREATE TABLE IF NOT EXISTS raw_events (
    source           Enum8('shopify' = 1, 'storefront' = 2),
    site             String,
    order_number     String,
    received_at      DateTime('UTC'),
    shop_domain      String,
    shopify_topic    String,
    webhook_id       String,
    event_id         String,
    triggered_at     Nullable(DateTime('UTC')),
    order_created_at Nullable(DateTime('UTC')),
    kafka_topic      String,
    kafka_partition  Int32,
    kafka_offset     Int64,
    body             String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (site, order_number, source, kafka_topic, kafka_partition, kafka_offset);
