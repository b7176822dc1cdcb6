package main

import (
	"strings"
	"testing"
	"time"
)

func TestSinkFlagsFromEnvAndArgs(t *testing.T) {
	env := map[string]string{
		"PURCHASESYNC_CLICKHOUSE_ADDR":     "10.0.0.1:9000, 10.0.0.2:9000",
		"PURCHASESYNC_CLICKHOUSE_DATABASE": "analytics",
		"PURCHASESYNC_SINK_BATCHROWS":      "1000",
		"PURCHASESYNC_SINK_FLUSHINTERVAL":  "250ms",
		"PURCHASESYNC_REGISTRAR_APIKEY":    "secret",
		"PURCHASESYNC_CLICKHOUSE_PASSWORD": "pw",
		"PURCHASESYNC_NOTIFIER_INTERVAL":   "5m",
		"PURCHASESYNC_SINK_MIGRATE":        "false",
	}
	fs := newFlagSet("sink", func(k string) string { return env[k] })
	sf := addSinkFlags(fs)
	if err := fs.parse([]string{"-sink.batchRows", "2000"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := sf.clickhouseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Addr, ",") != "10.0.0.1:9000,10.0.0.2:9000" || cfg.Database != "analytics" || cfg.Password != "pw" {
		t.Errorf("config = %+v", cfg)
	}
	if cfg.BatchRows != 2000 || cfg.FlushInterval != 250*time.Millisecond || cfg.Migrate {
		t.Errorf("the command line must win over the environment: rows %d, interval %s, migrate %v", cfg.BatchRows, cfg.FlushInterval, cfg.Migrate)
	}
	if *sf.registrarURL != "" || *sf.notifierURL != "" || *sf.registrarAPIKey != "secret" || *sf.notifierInterval != 5*time.Minute {
		t.Errorf("registrar/notifier flags: url %q %q key set %v interval %s", *sf.registrarURL, *sf.notifierURL, *sf.registrarAPIKey != "", *sf.notifierInterval)
	}

	fs = newFlagSet("sink", func(string) string { return "" })
	sf = addSinkFlags(fs)
	if err := fs.parse([]string{"-clickhouse.database", "bad-name"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sf.clickhouseConfig(nil); err == nil || !strings.Contains(err.Error(), "-clickhouse.database") {
		t.Errorf("bad database name: got %v, want an error naming the flag", err)
	}
}
