package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/collectors/version"
	"golang.org/x/sync/errgroup"

	"purchasesync/cmd/kafkaconf"
	"purchasesync/processors/sites"
	"purchasesync/schemas"
)

// common holds what every stage of one process shares: the logger, the one
// metrics registry, Kafka settings and the site registry.
type common struct {
	log    *slog.Logger
	reg    registry
	kafka  kafkaFlags
	topics schemas.Topics
	sites  *sites.Registry
}

// registry is the process's one metrics registry: stages register on it,
// the ops listener gathers it. (An interface so that a test can record what
// every stage registers: deploy/metrics.md must list exactly that.)
type registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// newRegistry is the process's one metrics registry, with Go, process and
// build-info collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	registerRuntime(reg)
	return reg
}

func registerRuntime(reg prometheus.Registerer) {
	stampBuildInfo()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		version.NewCollector("purchasesync"),
	)
}

// stageReg prefixes a stage's metrics: purchasesync_<stage>_...
func (c *common) stageReg(stage string) prometheus.Registerer {
	return prometheus.WrapRegistererWithPrefix("purchasesync_"+stage+"_", c.reg)
}

// newCommon builds the shared parts, including the site registry reader.
func newCommon(kf kafkaFlags, lf logFlags, stderr io.Writer) (*common, error) {
	return newCommonOn(kf, lf, stderr, newRegistry())
}

// startCommon is newCommon for a subcommand that talks to Kafka: it also
// checks the connection (checkKafka), so that a misconfiguration is one
// line at start rather than clients retrying forever. strict (-check) makes
// an unreachable cluster an error too.
func startCommon(ctx context.Context, kf kafkaFlags, lf logFlags, strict bool) (*common, error) {
	c, err := newCommon(kf, lf, nil)
	if err != nil {
		return nil, err
	}
	if err := c.checkKafka(ctx, strict); err != nil {
		return nil, err
	}
	return c, nil
}

// newCommonOn is newCommon with a given registry.
func newCommonOn(kf kafkaFlags, lf logFlags, stderr io.Writer, reg registry) (*common, error) {
	log, err := lf.logger(stderr)
	if err != nil {
		return nil, err
	}
	if err := kf.validate(); err != nil {
		return nil, err
	}
	c := &common{log: log, reg: reg, kafka: kf, topics: kf.topics()}
	scfg := sites.DefaultConfig()
	scfg.Topics = c.topics
	c.sites, err = sites.New(scfg, sites.Deps{KafkaOpts: kf.baseOpts(log, nil, "sites"),
		Registerer: c.stageReg("sites"), Logger: log.With("component", "sites")})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// checkKafka connects to Kafka once, before the stages start (kafkaconf's
// Check). A configuration error (a wrong password, an unknown CA, TLS
// against a plaintext listener, ...) ends the process with its one line. An
// unreachable cluster is logged once and the process goes on: its clients
// retry by themselves and its stages are not ready until Kafka answers;
// strict (-check) makes it an error.
func (c *common) checkKafka(ctx context.Context, strict bool) error {
	conf := c.kafka.built.conf
	if w := conf.Warning(); w != "" {
		c.log.Warn(w)
	}
	conf.ClientID += "-check"
	err := conf.Check(ctx)
	switch {
	case strict && ctx.Err() != nil:
		return ctx.Err() // -check interrupted: not a pass
	case err == nil || ctx.Err() != nil:
		return nil
	case errors.Is(err, kafkaconf.ErrUnreachable) && !strict:
		c.log.Warn("Kafka not reachable yet", "err", err.Error())
		return nil
	}
	return err
}

// actor is one long-running part of a process.
type actor struct {
	name string
	run  func(ctx context.Context) error
	// ready is the stage's readiness (nil error = ready); nil for parts
	// that have none (the ops listener, the observers).
	ready func() error
}

// checksOf lists the readiness checks of actors; advisory ones are shown by
// /readyz?verbose but do not fail /readyz (see namedCheck).
func checksOf(advisory bool, actors ...actor) []namedCheck {
	var checks []namedCheck
	for _, a := range actors {
		if a.ready != nil {
			checks = append(checks, namedCheck{name: a.name, check: a.ready, advisory: advisory})
		}
	}
	return checks
}

// runActors runs every actor until ctx ends or one fails; then it cancels
// the rest and waits for them (each flushes before returning), logging how
// long each took to stop.
func runActors(ctx context.Context, log *slog.Logger, actors ...actor) error {
	g, gctx := errgroup.WithContext(ctx)
	// Stop times count from when gctx ended, whichever notices it first.
	var once sync.Once
	var stopAt time.Time
	markStop := func() { once.Do(func() { stopAt = time.Now() }) }
	defer context.AfterFunc(gctx, markStop)()
	for _, a := range actors {
		g.Go(func() error {
			err := a.run(gctx)
			if err != nil && gctx.Err() == nil {
				return fmt.Errorf("%s: %w", a.name, err)
			}
			var took time.Duration
			if gctx.Err() != nil {
				markStop()
				took = time.Since(stopAt)
			}
			log.Info(a.name+" stopped", "actor", a.name, "took", took.String())
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("%s: %w", a.name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// sitesActor runs the site registry; it is ready once sites.v1 is loaded
// and while the registry can follow it.
func (c *common) sitesActor() actor {
	return actor{"site registry", c.sites.Run, c.sites.ReadyErr}
}

// afterSites is the actor of a stage that needs every site's settings: run
// starts once the site registry has loaded (the registry runs as its own
// actor); ctx ending first is a clean stop.
func (c *common) afterSites(name string, run func(ctx context.Context) error, ready func() error) actor {
	return actor{name, func(ctx context.Context) error {
		if err := c.sites.WaitReady(ctx); err != nil {
			return nil // ctx ended before the registry loaded
		}
		return run(ctx)
	}, ready}
}

// closers releases what a build made, the last made first: a build that
// fails half-way releases what it made so far, and its caller releases the
// rest after the actors stopped.
type closers []func()

func (cl *closers) add(f func()) { *cl = append(*cl, f) }

func (cl closers) closeAll() {
	for i := len(cl) - 1; i >= 0; i-- {
		cl[i]()
	}
}
