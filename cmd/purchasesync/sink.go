package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	chsink "purchasesync/sinks/clickhouse"
	"purchasesync/sinks/discrepancy"
	"purchasesync/sinks/registrar"
)

// sinkFlags configure the ClickHouse sink and the two optional forwarders
// (purchase registry, discrepancy notifier). `run` and `migrate` reuse them.
type sinkFlags struct {
	ch                                   chFlags
	group                                *string
	batchRows, batchBytes, decodeWorkers *int
	flushInterval, retryMax              *time.Duration
	migrateAtStart                       *bool

	registrarURL, registrarAPIKey *string
	registrarTest                 *bool
	notifierURL                   *string
	notifierInterval              *time.Duration
}

func addSinkFlags(fs *flagSet) *sinkFlags {
	d, rd, nd := chsink.DefaultConfig(), registrar.DefaultConfig(), discrepancy.DefaultConfig()
	return &sinkFlags{
		ch:    addClickHouseFlags(fs),
		group: fs.String("sink.group", d.Group, "consumer group of the ClickHouse sinks; instances in one group share the partitions"),
		batchRows: fs.Int("sink.batchRows", d.BatchRows,
			"insert when this many rows are buffered; also bounds memory while ClickHouse is down. See also -sink.flushInterval"),
		batchBytes: fs.Int("sink.batchBytes", d.BatchBytes, "insert when the buffered records reach this many bytes (bounds memory with large raw bodies)"),
		flushInterval: fs.Duration("sink.flushInterval", d.FlushInterval,
			"insert at least this often when records are buffered; ClickHouse prefers about one insert per second per table"),
		decodeWorkers: fs.Int("sink.decodeWorkers", d.DecodeWorkers,
			"goroutines converting polled records to rows (decoding is most of the sink's CPU); default: GOMAXPROCS"),
		retryMax:       fs.Duration("sink.retryMax", d.RetryMax, "longest wait between retries of a failed insert"),
		migrateAtStart: fs.Bool("sink.migrate", d.Migrate, "apply the ClickHouse migrations at start (else run `purchasesync migrate`)"),

		registrarURL: fs.String("registrar.url", "",
			"base URL of a Talkable-compatible purchase registry (POST <url>/api/v2/origins); empty = do not forward purchases"),
		registrarAPIKey: fs.Secret("registrar.apiKey", "bearer API key of the purchase registry"),
		registrarTest:   fs.Bool("registrar.forwardTest", rd.ForwardTest, "also forward Shopify test orders"),
		// The URL is the webhook's credential (whoever has it can post).
		notifierURL: fs.Secret("notifier.url",
			"Slack-compatible incoming-webhook URL for per-site discrepancy digests; empty = no notifications"),
		notifierInterval: fs.Duration("notifier.interval", nd.Interval, "at most one discrepancy message per site per this interval"),
	}
}

// chFlags are the ClickHouse connection flags, shared by the sink and the
// control plane (whose compliance processor redacts rows).
type chFlags struct {
	addr, database, user, password *string
}

func addClickHouseFlags(fs *flagSet) chFlags {
	d := chsink.DefaultConfig()
	return chFlags{
		addr:     fs.String("clickhouse.addr", "127.0.0.1:19000", "comma-separated ClickHouse native-protocol addresses (host:port); later ones are failovers"),
		database: fs.String("clickhouse.database", d.Database, "ClickHouse database of the purchases, discrepancies and raw_events tables"),
		user:     fs.String("clickhouse.user", d.Username, "ClickHouse user"),
		password: fs.Secret("clickhouse.password", "ClickHouse password"),
	}
}

// config is the sink's default configuration with these connection settings.
func (f chFlags) config() chsink.Config {
	cfg := chsink.DefaultConfig()
	cfg.Addr = splitList(*f.addr)
	cfg.Database, cfg.Username, cfg.Password = *f.database, *f.user, *f.password
	return cfg
}

func (f *sinkFlags) clickhouseConfig(c *common) (chsink.Config, error) {
	cfg := f.ch.config()
	cfg.Group = *f.group
	cfg.BatchRows, cfg.BatchBytes, cfg.FlushInterval = *f.batchRows, *f.batchBytes, *f.flushInterval
	cfg.DecodeWorkers = *f.decodeWorkers
	cfg.RetryMax = *f.retryMax
	cfg.RetryInitial = min(cfg.RetryInitial, cfg.RetryMax)
	cfg.Migrate = *f.migrateAtStart
	if c != nil {
		cfg.Topics = c.topics
	}
	return cfg, cfg.Validate()
}

// build returns the sink and, when their URLs are set, the registrar and
// the notifier, each as an actor.
func (f *sinkFlags) build(c *common) ([]actor, error) {
	cfg, err := f.clickhouseConfig(c)
	if err != nil {
		return nil, err
	}
	opts, err := c.kafka.producerOpts(c.log, c.reg, "sink", 10*time.Second)
	if err != nil {
		return nil, err
	}
	s, err := chsink.New(cfg, chsink.Deps{KafkaOpts: opts, Registerer: c.stageReg("sink"), Logger: c.log.With("component", "sink")})
	if err != nil {
		return nil, fmt.Errorf("cannot configure the ClickHouse sink: %w", err)
	}
	actors := []actor{{"clickhouse sink", s.Run}}

	if *f.registrarURL != "" {
		rc := registrar.DefaultConfig()
		rc.URL, rc.APIKey, rc.Topics, rc.ForwardTest = *f.registrarURL, *f.registrarAPIKey, c.topics, *f.registrarTest
		opts, err := c.kafka.producerOpts(c.log, c.reg, "registrar", 10*time.Second)
		if err != nil {
			return nil, err
		}
		r, err := registrar.New(rc, registrar.Deps{KafkaOpts: opts, Registerer: c.stageReg("registrar"), Logger: c.log.With("component", "registrar")})
		if err != nil {
			return nil, fmt.Errorf("cannot configure the registrar: %w", err)
		}
		actors = append(actors, actor{"registrar", r.Run})
	}
	if *f.notifierURL != "" {
		nc := discrepancy.DefaultConfig()
		nc.URL, nc.Topics, nc.Interval = *f.notifierURL, c.topics, *f.notifierInterval
		n, err := discrepancy.New(nc, discrepancy.Deps{KafkaOpts: c.kafka.baseOpts(c.log, c.reg, "notifier"),
			Registerer: c.stageReg("notifier"), Logger: c.log.With("component", "notifier")})
		if err != nil {
			return nil, fmt.Errorf("cannot configure the discrepancy notifier: %w", err)
		}
		actors = append(actors, actor{"discrepancy notifier", n.Run})
	}
	return actors, nil
}

// migrate applies the ClickHouse migrations (for `purchasesync migrate`).
func (f *sinkFlags) migrate(ctx context.Context, log *slog.Logger) error {
	cfg, err := f.clickhouseConfig(nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	v, err := chsink.Migrate(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("cannot migrate ClickHouse at %v (is it up? see -clickhouse.addr): %w", cfg.Addr, err)
	}
	log.Info("clickhouse schema ready", "database", cfg.Database, "version", v)
	return nil
}

// cmdSink runs the ClickHouse sink (and the optional forwarders) with the
// ops listener.
func cmdSink(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("sink", getenv)
	kf, lf, sf := addKafkaFlags(fs), addLogFlags(fs), addSinkFlags(fs)
	opsAddr := fs.String("ops.addr", "127.0.0.1:9466", "ops listener (/metrics, /healthz, /readyz)")
	if err := fs.parse(args); err != nil {
		return err
	}
	c, err := startCommon(ctx, kf, lf)
	if err != nil {
		return err
	}
	actors, err := sf.build(c)
	if err != nil {
		return err
	}
	ops := &opsServer{addr: *opsAddr, reg: c.reg, log: c.log}
	return runActors(ctx, c.log, append(actors, actor{"ops listener", ops.run})...)
}
