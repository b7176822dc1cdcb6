package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"purchasesync/cmd/chconf"
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

// chFlags are the ClickHouse connection flags (cmd/chconf: addresses,
// database, user, password, TLS), shared by the sink, migrate and the
// control plane (whose compliance processor redacts rows).
type chFlags struct{ *chconf.Flags }

func addClickHouseFlags(fs *flagSet) chFlags { return chFlags{chconf.AddFlags(fs.envFlagSet)} }

// checkClickHouse pings ClickHouse once, before the stages start (chconf's
// Check). A configuration error (a wrong password, an unknown CA,
// plaintext on the secure port, ...) ends the process with its one line; an
// unreachable server is logged once and the process goes on: the stages
// retry and are not ready until ClickHouse answers.
func checkClickHouse(ctx context.Context, log *slog.Logger, cfg chsink.Config, strict bool) error {
	err := chconf.Check(ctx, cfg)
	switch {
	case strict && ctx.Err() != nil:
		return ctx.Err() // -check interrupted: not a pass
	case err == nil || ctx.Err() != nil:
		return nil
	case errors.Is(err, chconf.ErrUnreachable) && !strict:
		log.Warn("ClickHouse not reachable yet", "err", err.Error())
		return nil
	}
	return err
}

func (f *sinkFlags) clickhouseConfig(c *common) (chsink.Config, error) {
	cfg, err := f.ch.Config()
	if err != nil {
		return cfg, err
	}
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
	actors := []actor{{"clickhouse sink", s.Run, s.Ready}}

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
		actors = append(actors, actor{"registrar", r.Run, r.Ready})
	}
	if *f.notifierURL != "" {
		nc := discrepancy.DefaultConfig()
		nc.URL, nc.Topics, nc.Interval = *f.notifierURL, c.topics, *f.notifierInterval
		n, err := discrepancy.New(nc, discrepancy.Deps{KafkaOpts: c.kafka.baseOpts(c.log, c.reg, "notifier"),
			Registerer: c.stageReg("notifier"), Logger: c.log.With("component", "notifier")})
		if err != nil {
			return nil, fmt.Errorf("cannot configure the discrepancy notifier: %w", err)
		}
		actors = append(actors, actor{"discrepancy notifier", n.Run, n.Ready})
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
	if err := checkClickHouse(ctx, log, cfg, false); err != nil {
		return err
	}
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
	fs.addDump(stdout)
	kf, lf, sf := addKafkaFlags(fs), addLogFlags(fs), addSinkFlags(fs)
	of := addOpsFlags(fs, defaultSinkOpsAddr)
	if err := fs.parse(args); err != nil {
		return err
	}
	c, err := startCommon(ctx, kf, lf, fs.checking())
	if err != nil {
		return err
	}
	cfg, err := sf.clickhouseConfig(c)
	if err != nil {
		return err
	}
	if err := checkClickHouse(ctx, c.log, cfg, fs.checking()); err != nil {
		return err
	}
	actors, err := sf.build(c)
	if err != nil {
		return err
	}
	if fs.checking() {
		return fs.checked()
	}
	return runActors(ctx, c.log, append(actors, of.actor(c, checksOf(false, actors...), nil, ""))...)
}
