package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"purchasesync/schemas"
)

// kafkaFlags are the Kafka settings every subcommand shares. This file is the
// only place []kgo.Opt is built.
type kafkaFlags struct {
	brokers     *string
	prefix      *string
	clientID    *string
	compression *string
	linger      *time.Duration
}

func addKafkaFlags(fs *flagSet) kafkaFlags {
	return kafkaFlags{
		brokers:  fs.String("kafka.brokers", "127.0.0.1:19092", "comma-separated Kafka bootstrap brokers"),
		prefix:   fs.String("kafka.topicPrefix", schemas.DefaultTopicPrefix, "prefix of every topic name"),
		clientID: fs.String("kafka.clientID", "purchasesync", "Kafka client id (shown in broker logs and quotas)"),
		linger: fs.Duration("kafka.linger", 2*time.Millisecond,
			"how long a producer waits to fill a batch; longer means fewer, larger requests (less broker CPU) for a little latency"),
		compression: fs.String("kafka.compression", "lz4",
			"producer compression: lz4, zstd, snappy or none. lz4 cuts webhook bytes on the wire several-fold; none saves ingest CPU (about a fifth per request) where brokers are close"),
	}
}

func (k kafkaFlags) topics() schemas.Topics { return schemas.Topics{Prefix: *k.prefix} }

func (k kafkaFlags) validate() error {
	if len(splitList(*k.brokers)) == 0 {
		return fmt.Errorf("no Kafka brokers: set -kafka.brokers or PURCHASESYNC_KAFKA_BROKERS")
	}
	if _, err := k.codec(); err != nil {
		return err
	}
	return nil
}

// baseOpts are the options of every client: seeds, client id, logging, and
// franz-go's own metrics under purchasesync_kafka_*.
func (k kafkaFlags) baseOpts(log *slog.Logger, reg prometheus.Registerer, role string) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(splitList(*k.brokers)...),
		kgo.ClientID(*k.clientID + "-" + role),
		kgo.WithLogger(kgoLogger{log.With("component", "kafka", "role", role)}),
	}
	return append(opts, k.hooks(reg, role)...)
}

// hooks are franz-go's metrics for one client, labelled by role. kprom
// registers its collectors when a client is created, so these options must
// go to exactly one client per role.
func (k kafkaFlags) hooks(reg prometheus.Registerer, role string) []kgo.Opt {
	if reg == nil {
		return nil
	}
	m := kprom.NewMetrics("purchasesync_kafka",
		kprom.Registerer(reg), kprom.WithStaticLabel(prometheus.Labels{"role": role}),
		kprom.FetchAndProduceDetail(kprom.Batches, kprom.Records, kprom.CompressedBytes))
	return []kgo.Opt{kgo.WithHooks(m)}
}

// producerOpts: acks=all and idempotence (franz-go defaults, stated here so a
// reader need not know them), a short linger for throughput under load, and
// a produce deadline safely below Shopify's 5 s webhook timeout.
func (k kafkaFlags) producerOpts(log *slog.Logger, reg prometheus.Registerer, role string, timeout time.Duration) ([]kgo.Opt, error) {
	opts := append(k.baseOpts(log, reg, role),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(*k.linger),
		kgo.RecordDeliveryTimeout(timeout),
	)
	codec, err := k.codec()
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec, kgo.NoCompression()))
	if err := kgo.ValidateOpts(opts...); err != nil {
		return nil, fmt.Errorf("invalid Kafka producer options: %w", err)
	}
	return opts, nil
}

// kgoLogger adapts slog to franz-go's logger; franz-go's info is chatty, so it
// is logged at debug.
type kgoLogger struct{ l *slog.Logger }

func (g kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (g kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		g.l.Error(msg, keyvals...)
	case kgo.LogLevelWarn:
		g.l.Warn(msg, keyvals...)
	default:
		g.l.Debug(msg, keyvals...)
	}
}

func (k kafkaFlags) codec() (kgo.CompressionCodec, error) {
	switch *k.compression {
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("invalid -kafka.compression %q (PURCHASESYNC_KAFKA_COMPRESSION): want lz4, zstd, snappy or none", *k.compression)
}
