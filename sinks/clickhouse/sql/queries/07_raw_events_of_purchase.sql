-- The raw events of one purchase, both sources, in arrival order.
SELECT source, received_at, shopify_topic, webhook_id, event_id, kafka_topic, kafka_partition, kafka_offset
FROM raw_events FINAL
WHERE site = 'example-store' AND order_number = '5837291049'
ORDER BY received_at, kafka_topic, kafka_offset
