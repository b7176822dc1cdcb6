package main

import (
	"context"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"purchasesync/ingest"
	"purchasesync/ingest/admin"
	"purchasesync/processors/control"
	"purchasesync/processors/control/appauth"
	"purchasesync/processors/keymode"
	"purchasesync/processors/lagmon"
	"purchasesync/processors/refundroute"
	"purchasesync/schemas/topicadmin"
	chsink "purchasesync/sinks/clickhouse"
	"purchasesync/sinks/discrepancy"
	"purchasesync/sinks/freshness"
	"purchasesync/sinks/registrar"
)

// TestFlagDefaultsAreThePackagesDefaults: with no flag given, the
// configuration cmd builds for each stage is the stage's DefaultConfig
// (plus what cmd sets from other flags: topics, instance, secrets), so a
// default is declared once, in its package, and cannot drift in cmd.
func TestFlagDefaultsAreThePackagesDefaults(t *testing.T) {
	fs := newFlagSet("run", func(k string) string { return map[string]string{secretEnv: "s"}[k] })
	f := addRunFlags(fs)
	if err := fs.parse([]string{"-kafka.brokers", "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	c, err := newCommon(f.kafka, f.log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	same := func(stage string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: cmd's defaults differ from the package's DefaultConfig:\n got  %+v\n want %+v", stage, got, want)
		}
	}

	icfg, err := f.ingest.config(c)
	if err != nil {
		t.Fatal(err)
	}
	iwant := ingest.DefaultConfig()
	iwant.Topics, iwant.Secrets, iwant.ShopSecrets, iwant.TrustedProxies = c.topics, icfg.Secrets, icfg.ShopSecrets, icfg.TrustedProxies
	same("ingest", icfg, iwant)

	scfg, err := f.sink.clickhouseConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	swant := chsink.DefaultConfig()
	swant.Topics = c.topics
	same("clickhouse sink", scfg, swant)
	same("registrar", *f.sink.registrarTest, registrar.DefaultConfig().ForwardTest)
	same("notifier", *f.sink.notifierInterval, discrepancy.DefaultConfig().Interval)

	cwant := control.DefaultConfig()
	cwant.Topics = c.topics
	same("control", f.control.controlConfig(c), cwant)
	kwant := keymode.DefaultConfig()
	kwant.Topics = c.topics
	same("keymode", f.control.keymodeConfig(c), kwant)
	same("admin", *f.control.keymodeMinMatches, admin.DefaultConfig().MinMatches)
	rwant := refundroute.DefaultConfig()
	rwant.Topics, rwant.Instance = c.topics, "i"
	same("refundroute", f.refund.config(c, "i"), rwant)

	same("lagmon", *f.observe.lagInterval, lagmon.DefaultConfig().Interval)
	same("freshness", *f.observe.freshnessInterval, freshness.DefaultConfig().Interval)
	td := topicadmin.DefaultConfig()
	same("migrate", []int{*f.migrate.partitions, *f.migrate.replication, *f.migrate.minISR},
		[]int{int(td.Partitions), int(td.ReplicationFactor), td.MinInsyncReplicas})
	ad := appauth.DefaultConfig()
	same("appauth", []string{*f.control.app.oauthURL, *f.control.app.scopes}, []string{ad.OAuthURL, strings.Join(ad.Scopes, ",")})

	var out strings.Builder
	if err := run(context.Background(), []string{"purchasesync", "sites", "-h"}, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	if want := regexp.MustCompile(`-admin\.timeout duration\n[^\n]*\(default ` + regexp.QuoteMeta(admin.DefaultClientConfig().Timeout.String()) + `\)`); !want.MatchString(out.String()) {
		t.Errorf("sites -admin.timeout is not admin.DefaultClientConfig's:\n%s", out.String())
	}
}

// TestEveryLongRunningSubcommandHasOpsFlags: each subcommand that serves
// until stopped has the ops listener's flags, -ops.pprof among them.
func TestEveryLongRunningSubcommandHasOpsFlags(t *testing.T) {
	for _, sub := range []string{"run", "ingest", "join", "sink", "control"} {
		var out strings.Builder
		if err := run(context.Background(), []string{"purchasesync", sub, "-dump"}, func(string) string { return "" }, &out); err != nil {
			t.Fatalf("%s -dump: %v", sub, err)
		}
		for _, flag := range []string{"ops.addr", "ops.pprof"} {
			if !regexp.MustCompile(`(?m)^-` + regexp.QuoteMeta(flag) + ` `).MatchString(out.String()) {
				t.Errorf("%s has no -%s", sub, flag)
			}
		}
	}
}
