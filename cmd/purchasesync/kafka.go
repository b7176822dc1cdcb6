package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"purchasesync/cmd/kafkaconf"
	"purchasesync/schemas"
)

// kafkaFlags are the Kafka settings every subcommand shares: the
// connection (cmd/kafkaconf: brokers, client id, TLS, SASL), the topic
// prefix and the producers' compression and linger. kafkaconf builds the
// connection's options; this file adds the rest, and nothing else builds
// []kgo.Opt.
type kafkaFlags struct {
	conn        *kafkaconf.Flags
	prefix      *string
	compression *string
	linger      *time.Duration

	built *kafkaConn // filled by validate
}

// kafkaConn is the validated connection.
type kafkaConn struct {
	conf kafkaconf.Config
	opts []kgo.Opt // conf.Opts(): seeds, client id, TLS, SASL
}

func addKafkaFlags(fs *flagSet) kafkaFlags {
	return kafkaFlags{
		conn:   kafkaconf.AddFlags(fs.envFlagSet, "purchasesync"),
		prefix: fs.String("kafka.topicPrefix", schemas.DefaultTopicPrefix, "prefix of every topic name"),
		linger: fs.Duration("kafka.linger", kafkaconf.DefaultLinger,
			"how long a producer waits to fill a batch; longer means fewer, larger requests (less broker CPU) for a little latency"),
		compression: fs.String("kafka.compression", "lz4",
			"producer compression: lz4, zstd, snappy or none. lz4 cuts webhook bytes on the wire several-fold; none saves ingest CPU (about a fifth per request) where brokers are close"),
		built: &kafkaConn{},
	}
}

func (k kafkaFlags) topics() schemas.Topics { return schemas.Topics{Prefix: *k.prefix} }

// validate checks the flags and builds the connection's options once (it
// reads the TLS files).
func (k kafkaFlags) validate() error {
	conf, err := k.conn.Config()
	if err != nil {
		return err
	}
	if _, err := k.codec(); err != nil {
		return err
	}
	opts, err := conf.Opts()
	if err != nil {
		return err
	}
	*k.built = kafkaConn{conf: conf, opts: opts}
	return nil
}

// baseOpts are the options of every client: the connection, the client id
// with the role appended (the later ClientID wins), logging, and franz-go's
// own metrics under purchasesync_kafka_*.
func (k kafkaFlags) baseOpts(log *slog.Logger, reg prometheus.Registerer, role string) []kgo.Opt {
	if k.built.opts == nil {
		panic("BUG: kafkaFlags.baseOpts before validate")
	}
	opts := append(slices.Clip(k.built.opts),
		kgo.ClientID(k.built.conf.ClientID+"-"+role),
		kgo.WithLogger(newKgoLogger(log.With("component", "kafka", "role", role))),
	)
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

// producerOpts are the base options plus kafkaconf's producer settings
// (shared with loadgen's floor) with the given delivery deadline.
func (k kafkaFlags) producerOpts(log *slog.Logger, reg prometheus.Registerer, role string, timeout time.Duration) ([]kgo.Opt, error) {
	codec, err := k.codec()
	if err != nil {
		return nil, err
	}
	opts := append(k.baseOpts(log, reg, role), kafkaconf.ProducerOpts(*k.linger, timeout, codec)...)
	if err := kgo.ValidateOpts(opts...); err != nil {
		return nil, fmt.Errorf("invalid Kafka producer options: %w", err)
	}
	return opts, nil
}

// kgoLogger adapts slog to franz-go's logger. franz-go logs per attempt
// (every failed dial, every retried request), while each stage logs an
// outage once as an episode (not ready ... ready again); so franz-go's info
// and warnings go to debug, and its errors, which "generally should not
// happen", to warn at most once per message per errorEvery.
type kgoLogger struct {
	l *slog.Logger

	mu   sync.Mutex
	last map[string]time.Time // when each error message was last logged at warn
}

// errorEvery is how often one franz-go error message may reach warn.
const errorEvery = 5 * time.Minute

func newKgoLogger(l *slog.Logger) *kgoLogger {
	return &kgoLogger{l: l, last: map[string]time.Time{}}
}

// Level skips franz-go's formatting of what would be dropped: with debug
// logging off only its errors can reach the log.
func (g *kgoLogger) Level() kgo.LogLevel {
	if g.l.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelError
}

func (g *kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level == kgo.LogLevelError && g.firstIn(msg, time.Now()) {
		g.l.Warn(msg, append(keyvals, "repeats", "logged at debug for "+errorEvery.String())...)
		return
	}
	g.l.Debug(msg, keyvals...)
}

// firstIn reports whether msg was not logged at warn within errorEvery of now.
func (g *kgoLogger) firstIn(msg string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t, ok := g.last[msg]; ok && now.Sub(t) < errorEvery {
		return false
	}
	g.last[msg] = now
	return true
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
