package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"purchasesync/processors/join"
)

type joinFlags struct {
	instance      *string
	group         *string
	webhookWait   *time.Duration
	dedupeHorizon *time.Duration
	tick          *time.Duration
	stateDir      *string
}

func addJoinFlags(fs *flagSet) *joinFlags {
	host, _ := os.Hostname()
	d := join.DefaultConfig()
	return &joinFlags{
		instance: fs.String("join.instance", host, "stable, unique name of this join instance; its transactional id is purchasesync-join-<instance>, so a restart fences its predecessor"),
		group:    fs.String("join.group", d.Group, "consumer group of the join processors"),
		webhookWait: fs.Duration("join.webhookWait", d.WebhookWait,
			"after this long without a webhook, a storefront-registered purchase of a syncing site gets a webhook_missing discrepancy (rule 6)"),
		dedupeHorizon: fs.Duration("join.dedupeHorizon", d.DedupeHorizon, "decided keys are remembered this long, then dropped (rule 8)"),
		tick:          fs.Duration("join.tickInterval", d.TickInterval, "how often wall-clock timers (holds, webhook waits) are checked"),
		stateDir: fs.String("join.stateDir", d.StateDir,
			"directory of the partitions' spill files: settled keys (nothing due but their expiry) keep their state there, not in memory; the files are unlinked once open and rebuilt from join.state.v1 at every restore; empty keeps every state in memory"),
	}
}

func (f *joinFlags) build(c *common) (*join.Processor, error) {
	cfg := join.DefaultConfig()
	cfg.Topics, cfg.Instance = c.topics, *f.instance
	cfg.Group = *f.group
	cfg.WebhookWait, cfg.DedupeHorizon, cfg.TickInterval = *f.webhookWait, *f.dedupeHorizon, *f.tick
	cfg.StateDir = *f.stateDir
	p, err := join.New(cfg, join.Deps{
		KafkaOpts:   c.kafka.baseOpts(c.log, nil, "join"),
		SessionOpts: c.kafka.hooks(c.reg, "join"),
		Sites:       c.sites,
		Registerer:  c.stageReg("join"),
		Logger:      c.log.With("component", "join"),
	})
	if err != nil {
		return nil, fmt.Errorf("cannot configure join: %w", err)
	}
	return p, nil
}

// joinActor runs the join once the site registry has loaded (its rules need
// every site's order_key and grace).
func joinActor(c *common, p *join.Processor) actor {
	return c.afterSites("join", p.Run, p.Ready)
}

func cmdJoin(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("join", getenv)
	fs.addDump(stdout)
	kf, lf, jf, rf := addKafkaFlags(fs), addLogFlags(fs), addJoinFlags(fs), addRefundFlags(fs)
	of := addOpsFlags(fs, defaultJoinOpsAddr)
	if err := fs.parse(args); err != nil {
		return err
	}
	c, err := startCommon(ctx, kf, lf, fs.checking())
	if err != nil {
		return err
	}
	p, err := jf.build(c)
	if err != nil {
		return err
	}
	r, err := rf.build(c, *jf.instance)
	if err != nil {
		return err
	}
	if fs.checking() {
		return fs.checked()
	}
	join, router := joinActor(c, p), refundActor(r)
	checks := append(checksOf(false, join, router), checksOf(true, c.sitesActor())...)
	return runActors(ctx, c.log, c.sitesActor(), of.actor(c, checks, nil, ""), join, router)
}
