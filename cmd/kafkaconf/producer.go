package kafkaconf

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultLinger is -kafka.linger's default: a short linger for throughput
// under load, far below what a webhook may wait.
const DefaultLinger = 2 * time.Millisecond

// ProducerOpts are the settings of every producer of purchasesync (the
// ingest's, and loadgen's Kafka floor, which measures exactly the ingest's):
// acks=all and idempotence (franz-go's defaults, stated here so a reader
// need not know them), the linger, the batch compression, and a delivery
// deadline per record.
func ProducerOpts(linger, deliveryTimeout time.Duration, codec kgo.CompressionCodec) []kgo.Opt {
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(linger),
		kgo.ProducerBatchCompression(codec, kgo.NoCompression()),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
	}
}
