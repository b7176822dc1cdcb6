package main

import (
	"time"

	"purchasesync/processors/lagmon"
	"purchasesync/sinks/freshness"
)

// observeFlags configure the actors that watch the pipeline from outside:
// the consumer lag of the join and sink groups as Kafka sees it, and the age
// of the newest row of each ClickHouse table (deploy/metrics.md).
type observeFlags struct {
	lagInterval       *time.Duration
	freshnessInterval *time.Duration
}

func addObserveFlags(fs *flagSet) *observeFlags {
	return &observeFlags{
		lagInterval: fs.Duration("lagmon.interval", lagmon.DefaultConfig().Interval,
			"how often the join and sink groups' lag is read from Kafka (purchasesync_consumer_*); 0 turns it off (run it in one process only)"),
		freshnessInterval: fs.Duration("freshness.interval", freshness.DefaultConfig().Interval,
			"how often the newest row of each ClickHouse table is read (purchasesync_freshness_*); each read scans one column, so raise it for very large tables; 0 turns it off"),
	}
}

// build returns the lag monitor of groups and the freshness monitor on conn
// as actors (none when their interval is 0).
func (f *observeFlags) build(c *common, groups []string, conn freshness.Querier) ([]actor, error) {
	var actors []actor
	if *f.lagInterval > 0 {
		cfg := lagmon.DefaultConfig()
		cfg.Groups, cfg.Interval = groups, *f.lagInterval
		m, err := lagmon.New(cfg, lagmon.Deps{
			KafkaOpts:  c.kafka.baseOpts(c.log, nil, "lagmon"),
			Registerer: c.stageReg("consumer"),
			Logger:     c.log.With("component", "lagmon"),
		})
		if err != nil {
			return nil, err
		}
		actors = append(actors, actor{name: "lag monitor", run: m.Run})
	}
	if *f.freshnessInterval > 0 {
		cfg := freshness.DefaultConfig()
		cfg.Interval = *f.freshnessInterval
		m, err := freshness.New(cfg, freshness.Deps{Conn: conn, Registerer: c.stageReg("freshness"), Logger: c.log.With("component", "freshness")})
		if err != nil {
			return nil, err
		}
		actors = append(actors, actor{name: "freshness monitor", run: m.Run})
	}
	return actors, nil
}
