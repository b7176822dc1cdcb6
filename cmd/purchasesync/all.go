package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	chsink "purchasesync/sinks/clickhouse"
)

// cmdRun runs every stage in one process — the single-machine default:
// site registry, public ingest, join, ClickHouse sink (with the optional
// registrar and notifier), control plane (admin API, watchdog,
// reconciliation), compliance, and the ops listener. With -run.migrate (the
// default) it first creates the topics and applies the ClickHouse
// migrations, so a fresh stack needs nothing else.
func cmdRun(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("run", getenv)
	kf, lf := addKafkaFlags(fs), addLogFlags(fs)
	inf, jf, sf, cf, mf := addIngestFlags(fs), addJoinFlags(fs), addSinkFlags(fs), addControlFlags(fs), addMigrateFlags(fs)
	opsAddr := fs.String("ops.addr", "127.0.0.1:9464", "ops listener: /metrics, /healthz, /readyz, /admin/v1/")
	doMigrate := fs.Bool("run.migrate", true, "create topics and apply ClickHouse migrations at start")
	if err := fs.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	c, err := newCommon(kf, lf, nil)
	if err != nil {
		return err
	}
	if *doMigrate {
		if err := mf.migrateKafka(ctx, c); err != nil {
			return err
		}
		if err := sf.migrate(ctx, c.log); err != nil {
			return err
		}
	}
	srv, err := inf.build(c)
	if err != nil {
		return err
	}
	defer inf.close()
	proc, err := jf.build(c)
	if err != nil {
		return err
	}
	sinkActors, err := sf.build(c)
	if err != nil {
		return err
	}
	admin, controlActors, err := adminHandler(c, cf, nil)
	if err != nil {
		return err
	}
	chCfg, err := sf.clickhouseConfig(c)
	if err != nil {
		return err
	}
	conn, err := chsink.Open(chCfg, chCfg.Database)
	if err != nil {
		return fmt.Errorf("cannot connect to ClickHouse for compliance redactions (-clickhouse.addr): %w", err)
	}
	defer conn.Close()
	compl, err := complianceProcessor(c, cf, conn)
	if err != nil {
		return err
	}
	ops := &opsServer{addr: *opsAddr, reg: c.reg, ready: srv.Ready, admin: admin, log: c.log}
	actors := []actor{
		{"site registry", c.sites.Run},
		{"ops listener", ops.run},
		{"ingest", srv.Run},
		{"join", func(ctx context.Context) error {
			if err := c.sites.WaitReady(ctx); err != nil {
				return nil
			}
			return proc.Run(ctx)
		}},
		compl,
	}
	actors = append(actors, sinkActors...)
	actors = append(actors, controlActors...)
	c.log.Info("purchasesync running", "ingest", *inf.addr, "ops", *opsAddr)
	return runActors(ctx, c.log, actors...)
}
