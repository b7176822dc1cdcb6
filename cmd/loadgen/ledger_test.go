package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestLedgerFlagsShareThePipelinesEnvironment: a shell set up for the
// pipeline runs the check against the same topics with the same secrets,
// and -h shows none of them.
func TestLedgerFlagsShareThePipelinesEnvironment(t *testing.T) {
	env := map[string]string{
		"PURCHASESYNC_KAFKA_TOPICPREFIX":    "staging.",
		"PURCHASESYNC_SHOPIFY_API_SECRET":   "new-secret,old-secret",
		"PURCHASESYNC_ADMIN_TOKEN":          "admin-token-value",
		"PURCHASESYNC_CLICKHOUSE_DATABASE":  "staging_db",
		"PURCHASESYNC_CLICKHOUSE_PASSWORD":  "ch-password-value",
		"PURCHASESYNC_KAFKA_SASL_PASSWORD":  "kafka-password-value",
		"PURCHASESYNC_KAFKA_SASL_MECHANISM": "scram-sha-512",
		"PURCHASESYNC_KAFKA_SASL_USERNAME":  "u",
	}
	var out bytes.Buffer
	cfg, err := parseLedger([]string{"-target", "http://127.0.0.1:8080"}, func(k string) string { return env[k] }, &out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Topics.Prefix != "staging." {
		t.Errorf("topic prefix %q, want PURCHASESYNC_KAFKA_TOPICPREFIX's", cfg.Topics.Prefix)
	}
	if cfg.Secret != "new-secret" || cfg.AdminToken != "admin-token-value" || cfg.ClickHouse.Database != "staging_db" {
		t.Errorf("secret %q, admin token %q, database %q: want the first Shopify secret, the token and the database of the environment",
			cfg.Secret, cfg.AdminToken, cfg.ClickHouse.Database)
	}
	if !cfg.SourceAddrs {
		t.Error("a loopback target should give each shopper its own address")
	}
	out.Reset()
	parseLedger([]string{"-h"}, func(k string) string { return env[k] }, &out)
	for _, v := range env {
		if strings.Contains(v, "value") && strings.Contains(out.String(), v) {
			t.Errorf("-h shows the secret %q", v)
		}
	}
	if !strings.Contains(out.String(), "PURCHASESYNC_KAFKA_TOPICPREFIX") {
		t.Error("-h does not name -kafka.topicPrefix's variable")
	}
}
