package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/collectors/version"
	"golang.org/x/sync/errgroup"

	"purchasesync/processors/sites"
	"purchasesync/schemas"
)

// common holds what every stage of one process shares: the logger, the one
// metrics registry, Kafka settings and the site registry.
type common struct {
	log    *slog.Logger
	reg    *prometheus.Registry
	kafka  kafkaFlags
	topics schemas.Topics
	sites  *sites.Registry
}

// newRegistry is the process's one metrics registry, with Go, process and
// build-info collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		version.NewCollector("purchasesync"),
	)
	return reg
}

// stageReg prefixes a stage's metrics: purchasesync_<stage>_...
func (c *common) stageReg(stage string) prometheus.Registerer {
	return prometheus.WrapRegistererWithPrefix("purchasesync_"+stage+"_", c.reg)
}

// newCommon builds the shared parts, including the site registry reader.
func newCommon(kf kafkaFlags, lf logFlags, stderr io.Writer) (*common, error) {
	log, err := lf.logger(stderr)
	if err != nil {
		return nil, err
	}
	if err := kf.validate(); err != nil {
		return nil, err
	}
	c := &common{log: log, reg: newRegistry(), kafka: kf, topics: kf.topics()}
	c.sites, err = sites.New(sites.DefaultConfig(c.topics.Name(schemas.TopicSites)),
		kf.baseOpts(log, nil, "sites"), c.stageReg("sites"), log)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// actor is one long-running part of a process.
type actor struct {
	name string
	run  func(ctx context.Context) error
}

// runActors runs every actor until ctx ends or one fails; then it cancels
// the rest and waits for them (each flushes before returning), logging how
// long each took to stop.
func runActors(ctx context.Context, log *slog.Logger, actors ...actor) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, a := range actors {
		g.Go(func() error {
			err := a.run(gctx)
			start := time.Now()
			if err != nil && gctx.Err() == nil {
				return fmt.Errorf("%s: %w", a.name, err)
			}
			log.Info(a.name+" stopped", "took", time.Since(start).String())
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("%s: %w", a.name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// sitesReady is a readiness check: the site registry has loaded.
func (c *common) sitesReady() error {
	if !c.sites.Ready() {
		return fmt.Errorf("site registry not loaded yet")
	}
	return nil
}
