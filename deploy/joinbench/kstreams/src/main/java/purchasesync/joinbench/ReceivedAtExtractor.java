package purchasesync.joinbench;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.format.DateTimeParseException;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.streams.processor.TimestampExtractor;

/**
 * Event time is the ingest's received-at header (RFC 3339, UTC, nanoseconds), as in the join:
 * both peers then open and close windows on the same clock, however late the backlog is read.
 * A record without a readable stamp falls back to its Kafka timestamp, as the join does.
 */
public final class ReceivedAtExtractor implements TimestampExtractor {
    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
        Header h = record.headers().lastHeader("received-at");
        if (h != null && h.value() != null) {
            try {
                return Instant.parse(new String(h.value(), StandardCharsets.US_ASCII)).toEpochMilli();
            } catch (DateTimeParseException e) {
                // fall through to the record's timestamp
            }
        }
        return record.timestamp();
    }
}
