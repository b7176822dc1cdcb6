package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"purchasesync/schemas"
)

func ingestConfigFrom(t *testing.T, env map[string]string, args ...string) (*ingestFlags, error) {
	t.Helper()
	fs := newFlagSet("ingest", func(k string) string { return env[k] })
	f := addIngestFlags(fs)
	if err := fs.parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	_, err := f.config(&common{topics: schemas.Topics{Prefix: "p."}})
	return f, err
}

func TestIngestFlags(t *testing.T) {
	// The secret comes from the variable DESIGN §6 names, comma-separated.
	fs := newFlagSet("ingest", func(k string) string {
		return map[string]string{secretEnv: "new, old", "PURCHASESYNC_INGEST_PRODUCETIMEOUT": "750ms"}[k]
	})
	f := addIngestFlags(fs)
	if err := fs.parse([]string{"-ingest.trustedProxies", "10.0.0.0/8,127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config(&common{topics: schemas.Topics{Prefix: "p."}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Secrets) != 2 || string(cfg.Secrets[0]) != "new" || string(cfg.Secrets[1]) != "old" {
		t.Errorf("secrets %q, want [new old]", cfg.Secrets)
	}
	if cfg.ProduceTimeout != 750*time.Millisecond || len(cfg.TrustedProxies) != 2 || cfg.Topics.Prefix != "p." {
		t.Errorf("config %+v", cfg)
	}
	// The flag wins over the variable.
	fs = newFlagSet("ingest", func(k string) string { return map[string]string{secretEnv: "env"}[k] })
	f = addIngestFlags(fs)
	if err := fs.parse([]string{"-shopify.apiSecret", "flag"}); err != nil {
		t.Fatal(err)
	}
	if cfg, err := f.config(&common{}); err != nil || string(cfg.Secrets[0]) != "flag" || len(cfg.Secrets) != 1 {
		t.Errorf("flag secret: %q %v", cfg.Secrets, err)
	}
}

func TestIngestFlagsErrors(t *testing.T) {
	_, err := ingestConfigFrom(t, nil)
	if err == nil || !strings.Contains(err.Error(), "-shopify.apiSecret") || !strings.Contains(err.Error(), secretEnv) {
		t.Errorf("missing secret: %v, want an error naming the flag and %s", err, secretEnv)
	}
	_, err = ingestConfigFrom(t, map[string]string{secretEnv: "s"}, "-ingest.trustedProxies", "10.0.0.300")
	if err == nil || !strings.Contains(err.Error(), "-ingest.trustedProxies") {
		t.Errorf("bad proxy: %v", err)
	}
	_, err = ingestConfigFrom(t, map[string]string{secretEnv: "s"}, "-ingest.produceTimeout", "6s")
	if err == nil || !strings.Contains(err.Error(), "-ingest.produceTimeout") {
		t.Errorf("produce timeout above Shopify's: %v", err)
	}
}

// The help lists flag defaults; a secret must never be one.
func TestIngestHelpHidesSecret(t *testing.T) {
	fs := newFlagSet("ingest", func(k string) string {
		return map[string]string{secretEnv: "hunter2", "PURCHASESYNC_SHOPIFY_APISECRET": "hunter3"}[k]
	})
	addIngestFlags(fs)
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.PrintDefaults()
	if strings.Contains(out.String(), "hunter") || !strings.Contains(out.String(), secretEnv) {
		t.Fatalf("help leaks the secret or omits %s:\n%s", secretEnv, out.String())
	}
}
