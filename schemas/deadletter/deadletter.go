// Package deadletter builds the records the join and the sinks write to the
// dead-letter topic (schemas.TopicDeadLetter) for input they cannot use:
// the original key, value and headers, plus headers saying why and where it
// came from. One builder, so one topic has one record shape. It lives
// beside the contract (like topicadmin) because it needs franz-go's record
// type, which package schemas does without.
package deadletter

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/schemas"
)

// maxReason bounds the reason header: some server errors carry kilobytes of
// help text (ClickHouse 18.16's engine errors do), which helps nobody.
const maxReason = 512

// Record returns the dead letter for src, to be produced to topic (the full
// dead-letter topic name). A sink that no longer holds the value passes a
// record with only Topic, Partition, Offset and Key set.
func Record(topic string, src *kgo.Record, reason string) *kgo.Record {
	if len(reason) > maxReason {
		reason = reason[:maxReason] + "…"
	}
	out := &kgo.Record{Topic: topic, Key: src.Key, Value: src.Value}
	out.Headers = append(make([]kgo.RecordHeader, 0, len(src.Headers)+4), src.Headers...)
	out.Headers = append(out.Headers,
		kgo.RecordHeader{Key: schemas.HeaderReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: schemas.HeaderSourceTopic, Value: []byte(src.Topic)},
		kgo.RecordHeader{Key: schemas.HeaderSourcePartition, Value: []byte(strconv.Itoa(int(src.Partition)))},
		kgo.RecordHeader{Key: schemas.HeaderSourceOffset, Value: []byte(strconv.FormatInt(src.Offset, 10))},
	)
	return out
}

// Header returns the value of the last header named key, or "".
func Header(r *kgo.Record, key string) string {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value)
		}
	}
	return ""
}
