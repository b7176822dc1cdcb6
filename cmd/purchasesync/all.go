package main

import (
	"context"
	"fmt"
	"io"

	chsink "purchasesync/sinks/clickhouse"
)

// runFlags are the flags of `run`: every stage's.
type runFlags struct {
	kafka   kafkaFlags
	log     logFlags
	ingest  *ingestFlags
	join    *joinFlags
	refund  *refundFlags
	sink    *sinkFlags
	control *controlFlags
	migrate *migrateFlags
	observe *observeFlags

	ops       opsFlags
	doMigrate *bool
}

func addRunFlags(fs *flagSet) runFlags {
	f := runFlags{
		kafka: addKafkaFlags(fs), log: addLogFlags(fs),
		ingest: addIngestFlags(fs), join: addJoinFlags(fs), refund: addRefundFlags(fs), sink: addSinkFlags(fs), control: addControlFlags(fs),
		migrate: addMigrateFlags(fs), observe: addObserveFlags(fs),
		ops:       addOpsFlags(fs, defaultOpsAddr),
		doMigrate: fs.Bool("run.migrate", true, "create topics and apply ClickHouse migrations at start"),
	}
	f.control.app = addAppFlags(fs, f.ingest.secret)
	return f
}

// cmdRun runs every stage in one process — the single-machine default:
// site registry, public ingest, join, ClickHouse sink (with the optional
// registrar and notifier), control plane (admin API, watchdog,
// reconciliation), compliance, the lag and freshness monitors, and the ops
// listener. With -run.migrate (the default) it first creates the topics and
// applies the ClickHouse migrations, so a fresh stack needs nothing else.
func cmdRun(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("run", getenv)
	fs.addDump(stdout)
	f := addRunFlags(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	c, err := startCommon(ctx, f.kafka, f.log, fs.checking())
	if err != nil {
		return err
	}
	if !*f.doMigrate || fs.checking() { // migrate checks it first
		cfg, err := f.sink.clickhouseConfig(c)
		if err != nil {
			return err
		}
		if err := checkClickHouse(ctx, c.log, cfg, fs.checking()); err != nil {
			return err
		}
	}
	if fs.checking() {
		_, closeAll, err := buildRun(c, f)
		if err != nil {
			return err
		}
		closeAll()
		return fs.checked()
	}
	if *f.doMigrate {
		if err := f.migrate.migrateKafka(ctx, c); err != nil {
			return err
		}
		if err := f.sink.migrate(ctx, c.log); err != nil {
			return err
		}
	}
	actors, closeAll, err := buildRun(c, f)
	if err != nil {
		return err
	}
	defer closeAll()
	c.log.Info("purchasesync running", "ingest", *f.ingest.addr, "ops", *f.ops.addr)
	return runActors(ctx, c.log, actors...)
}

// buildRun constructs every stage of `run` on c without connecting to
// anything (Kafka clients and the ClickHouse pool dial on first use, inside
// the actors), so a test can build the whole process and list its metrics.
// closeAll releases what the stages share (the ingest producer, the
// ClickHouse pool); call it after the actors have stopped.
func buildRun(c *common, f runFlags) (_ []actor, _ func(), err error) {
	var cl closers
	defer func() {
		if err != nil {
			cl.closeAll()
		}
	}()
	srv, err := f.ingest.build(c)
	if err != nil {
		return nil, nil, err
	}
	cl.add(f.ingest.close)
	proc, err := f.join.build(c)
	if err != nil {
		return nil, nil, err
	}
	router, err := f.refund.build(c, *f.join.instance)
	if err != nil {
		return nil, nil, err
	}
	sinkActors, err := f.sink.build(c)
	if err != nil {
		return nil, nil, err
	}
	chCfg, err := f.sink.clickhouseConfig(c)
	if err != nil {
		return nil, nil, err
	}
	conn, err := chsink.Open(chCfg, chCfg.Database)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot connect to ClickHouse for compliance redactions (-clickhouse.addr): %w", err)
	}
	cl.add(func() { conn.Close() })
	parts, err := adminHandler(c, f.control, nil, chsink.Doubles{Conn: conn, Cluster: chCfg.Cluster != ""}, chsink.Merchant{Conn: conn})
	if err != nil {
		return nil, nil, err
	}
	cl.add(parts.close)
	compl, closeReplicas, err := complianceProcessor(c, f.control, conn, chCfg)
	if err != nil {
		return nil, nil, err
	}
	cl.add(closeReplicas)
	observers, err := f.observe.build(c, []string{*f.join.group, chCfg.Group}, conn)
	if err != nil {
		return nil, nil, err
	}
	// /readyz of `run` gates on what the load balancer in front of it needs:
	// the ingest and the join. The stages behind Kafka (sinks, forwarders,
	// control plane, compliance) are advisory: a ClickHouse or registry
	// outage must not take the webhook endpoint out of service, since Kafka
	// holds what they have not taken yet.
	gating := []actor{{"ingest", srv.Run, srv.Ready}, joinActor(c, proc)}
	// The refund router is behind Kafka too: what it has not routed waits
	// in shopify.order_ids.v1.
	behind := append(append(append([]actor{c.sitesActor(), compl, refundActor(router)}, sinkActors...), parts.gating...), parts.advisory...)
	checks := append(checksOf(false, gating...), checksOf(true, behind...)...)
	actors := append(append(gating, behind...), f.ops.actor(c, checks, parts.admin, *f.control.adminToken))
	actors = append(actors, observers...)
	return actors, cl.closeAll, nil
}
