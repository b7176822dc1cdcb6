package main

import (
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/deploy/testenv"
)

// TestDumpPrintsTheEffectiveConfiguration: every subcommand that runs a
// stage prints its configuration with -dump, says where each value came
// from, masks secrets, and exits without connecting to anything.
func TestDumpPrintsTheEffectiveConfiguration(t *testing.T) {
	env := map[string]string{
		"PURCHASESYNC_KAFKA_BROKERS":        "kafka-1.internal:9093",
		"PURCHASESYNC_KAFKA_SASL_MECHANISM": "scram-sha-512",
		"PURCHASESYNC_KAFKA_SASL_USERNAME":  "purchasesync",
		"PURCHASESYNC_KAFKA_SASL_PASSWORD":  "kafka-pw-51c0",
		"PURCHASESYNC_SHOPIFY_API_SECRET":   "shpss-9a7e",
		"PURCHASESYNC_ADMIN_TOKEN":          "admin-tok-44d1",
		"PURCHASESYNC_CLICKHOUSE_PASSWORD":  "ch-pw-7f2a",
		"PURCHASESYNC_NOTIFIER_URL":         "https://hooks.example.com/T000/B000/xyz-secret",
		"PURCHASESYNC_CLICKHOUSE_DATABASE":  "analytics",
		"PURCHASESYNC_KAFKA_TOPICPREFIX":    "prod.",
		"PURCHASESYNC_REGISTRAR_APIKEY":     "talkable-key-1b2c",
		"PURCHASESYNC_SHOPIFY_ACCESSTOKENS": "a.myshopify.com=shpat_0d9e",
	}
	getenv := func(k string) string { return env[k] }
	for _, sub := range []string{"run", "control", "ingest", "join", "sink", "migrate", "replay"} {
		t.Run(sub, func(t *testing.T) {
			var out strings.Builder
			if err := run(context.Background(), []string{"purchasesync", sub, "-dump", "-log.level", "debug"}, getenv, &out); err != nil {
				t.Fatalf("%s -dump: %v", sub, err)
			}
			got := out.String()
			for _, want := range []*regexp.Regexp{
				regexp.MustCompile(`(?m)^-kafka\.brokers +kafka-1\.internal:9093 +env PURCHASESYNC_KAFKA_BROKERS$`),
				regexp.MustCompile(`(?m)^-kafka\.sasl\.password +\(set, not shown\) +env `),
				regexp.MustCompile(`(?m)^-log\.level +debug +command line$`),
				regexp.MustCompile(`(?m)^-log\.format +json +default$`),
			} {
				if !want.MatchString(got) {
					t.Errorf("%s -dump lacks %s:\n%s", sub, want, got)
				}
			}
			for k, v := range env {
				if strings.Contains(k, "PASSWORD") || strings.Contains(k, "SECRET") || strings.Contains(k, "TOKEN") || strings.Contains(k, "URL") || strings.Contains(k, "APIKEY") {
					if v != "" && strings.Contains(got, v) {
						t.Errorf("%s -dump shows %s's value:\n%s", sub, k, got)
					}
				}
			}
		})
	}
}

// TestFunctionalCheck: -check on the real stack says all is well and
// creates nothing (not even migrate's topics); a ClickHouse that does not
// answer fails it with the flag to fix.
func TestFunctionalCheck(t *testing.T) {
	brokers := testenv.Kafka(t)
	chAddr := testenv.ClickHouse(t)
	name := testenv.Name(t)
	env := map[string]string{
		"PURCHASESYNC_KAFKA_BROKERS":       strings.Join(brokers, ","),
		"PURCHASESYNC_KAFKA_TOPICPREFIX":   name + ".",
		"PURCHASESYNC_CLICKHOUSE_ADDR":     chAddr,
		"PURCHASESYNC_CLICKHOUSE_DATABASE": name,
		"PURCHASESYNC_SHOPIFY_API_SECRET":  e2eSecret,
		"PURCHASESYNC_ADMIN_TOKEN":         e2eToken,
		"PURCHASESYNC_LOG_LEVEL":           "error",
	}
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, sub := range []string{"run", "control", "ingest", "join", "sink", "migrate", "replay"} {
		var out strings.Builder
		args := []string{"purchasesync", sub, "-check", "-ops.addr", testenv.FreeAddr(t)}
		switch sub {
		case "migrate", "replay":
			args = args[:3]
		}
		if sub == "replay" {
			args = append(args, "-replay.from", "1h")
		}
		if err := run(ctx, args, getenv, &out); err != nil {
			t.Errorf("%s -check: %v", sub, err)
		} else if !strings.Contains(out.String(), sub+" -check: the configuration is valid") {
			t.Errorf("%s -check printed %q", sub, out.String())
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics.Names() {
		if strings.HasPrefix(tp, name+".") {
			t.Errorf("-check created topic %s", tp)
		}
	}

	env["PURCHASESYNC_CLICKHOUSE_ADDR"] = "127.0.0.1:1"
	err = run(ctx, []string{"purchasesync", "sink", "-check"}, getenv, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "clickhouse.addr") {
		t.Errorf("sink -check with ClickHouse down: %v, want an error naming -clickhouse.addr", err)
	}
}
