package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"purchasesync/processors/join"
	"purchasesync/schemas"
	"purchasesync/schemas/topicadmin"
)

func cmdReplay(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("replay", getenv)
	fs.addDump(stdout)
	kf, lf := addKafkaFlags(fs), addLogFlags(fs)
	from := fs.String("replay.from", "", "replay input received from this time on (RFC 3339, or a duration ago such as 24h); required")
	outPrefix := fs.String("replay.outputPrefix", "", "write purchases, discrepancies and state under this topic prefix (created first); empty = dry run that only prints a summary")
	jd, td := join.DefaultConfig(), topicadmin.DefaultConfig()
	wait := fs.Duration("join.webhookWait", jd.WebhookWait, "as for the join")
	horizon := fs.Duration("join.dedupeHorizon", jd.DedupeHorizon, "as for the join")
	partitions := fs.Int("kafka.partitions", int(td.Partitions), "partitions of the output topics when -replay.outputPrefix creates them; use the input's count")
	if err := fs.parse(args); err != nil {
		return err
	}
	start, err := parseFrom(*from, time.Now())
	if err != nil {
		return err
	}
	c, err := startCommon(ctx, kf, lf, fs.checking())
	if err != nil {
		return err
	}
	if fs.checking() {
		return fs.checked()
	}
	cfg := join.ReplayConfig{Input: c.topics, From: start, WebhookWait: *wait, DedupeHorizon: *horizon}
	if *outPrefix != "" {
		out := schemas.Topics{Prefix: *outPrefix}
		cfg.Output = &out
		// Replication as migrate picks it: from the cluster's size.
		d := topicadmin.DefaultConfig()
		mf := &migrateFlags{partitions: partitions, replication: ptrInt(int(d.ReplicationFactor)), minISR: ptrInt(d.MinInsyncReplicas)}
		oc := *c
		oc.topics = out
		if err := mf.migrateKafka(ctx, &oc); err != nil {
			return err
		}
	}
	go func() { _ = c.sites.Run(ctx) }()
	if err := c.sites.WaitReady(ctx); err != nil {
		return err
	}
	sum, err := join.Replay(ctx, cfg, join.ReplayDeps{KafkaOpts: c.kafka.baseOpts(c.log, nil, "replay"), Sites: c.sites, Progress: progressBar(os.Stderr)})
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr)
	printSummary(stdout, sum)
	return nil
}

func ptrInt(v int) *int { return &v }

// parseFrom accepts RFC 3339 or a duration ago.
func parseFrom(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("-replay.from (PURCHASESYNC_REPLAY_FROM) is required: a time (2026-11-20T00:00:00Z) or a duration ago (24h)")
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid -replay.from %q: want RFC 3339 or a duration: %w", s, err)
	}
	return t, nil
}

// progressBar draws "read  [=====     ] 52%" on w, redrawn in place.
func progressBar(w io.Writer) func(phase string, done, total int64) {
	return func(phase string, done, total int64) {
		if total <= 0 {
			return
		}
		pct := done * 100 / total
		bar := strings.Repeat("=", int(pct/5)) + strings.Repeat(" ", 20-int(pct/5))
		fmt.Fprintf(w, "\r%-6s [%s] %3d%% %d/%d", phase, bar, pct, done, total)
	}
}

func printSummary(w io.Writer, s *join.ReplaySummary) {
	fmt.Fprintf(w, "records replayed: %d\n", s.Records)
	section := func(title string, m map[string]int64) {
		fmt.Fprintf(w, "%s:\n", title)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %-28s %d\n", k, m[k])
		}
	}
	section("registrations by registered_via", s.Registrations)
	section("decisions by outcome", s.Outcomes)
	section("discrepancies by field", s.Discrepancies)
}
