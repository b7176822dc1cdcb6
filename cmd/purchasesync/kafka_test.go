package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"purchasesync/cmd/kafkaconf"
	"purchasesync/schemas"
)

// secretVars are every secret of the project, each with a value that must
// never show up in -h output or an error.
var secretVars = map[string]string{
	"PURCHASESYNC_KAFKA_SASL_PASSWORD":  "hunter2-kafka",
	secretEnv:                           "hunter2-shopify",
	"PURCHASESYNC_ADMIN_TOKEN":          "hunter2-admin",
	"PURCHASESYNC_SHOPIFY_ACCESSTOKENS": "a.myshopify.com=hunter2-access",
	"PURCHASESYNC_REGISTRAR_APIKEY":     "hunter2-registrar",
	"PURCHASESYNC_NOTIFIER_URL":         "https://hooks.slack.example/services/hunter2-notifier",
	"PURCHASESYNC_CLICKHOUSE_PASSWORD":  "hunter2-clickhouse",
}

// secretEnvs is secretVars as variables, and as _FILE variables naming
// files that hold them.
func secretEnvs(t *testing.T) map[string]map[string]string {
	dir := t.TempDir()
	files := map[string]string{}
	for k, v := range secretVars {
		p := filepath.Join(dir, k)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		files[k+"_FILE"] = p
	}
	return map[string]map[string]string{"env": secretVars, "file": files}
}

func noSecrets(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, "hunter2") {
		t.Errorf("%s shows a secret:\n%s", what, s)
	}
}

// captureStderr runs fn with os.Stderr going to a buffer: the flag package
// prints -h there.
func captureStderr(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	defer func() { os.Stderr = old }()
	fn()
	w.Close()
	os.Stderr = old
	return string(<-done)
}

// TestHelpHidesSecrets: no subcommand's -h shows a secret, from its
// variable or its file, and each names the _FILE variables.
func TestHelpHidesSecrets(t *testing.T) {
	for how, env := range secretEnvs(t) {
		for name := range commands() {
			var stdout bytes.Buffer
			var err error
			help := captureStderr(t, func() {
				err = run(context.Background(), []string{"purchasesync", name, "-h"}, func(k string) string { return env[k] }, &stdout)
			})
			if err != nil {
				t.Errorf("%s -h (%s): %v", name, how, err)
			}
			help += stdout.String()
			// A mistyped flag prints the usage too, into the service's log.
			typo := captureStderr(t, func() {
				err = run(context.Background(), []string{"purchasesync", name, "-no.such.flag=x"}, func(k string) string { return env[k] }, &stdout)
			})
			if err == nil {
				t.Errorf("%s -no.such.flag: no error", name)
			} else {
				typo += err.Error()
			}
			noSecrets(t, name+" with a mistyped flag ("+how+")", typo+stdout.String())
			if name == "version" { // no flags, so nothing to show
				noSecrets(t, name+" -h ("+how+")", help)
				continue
			}
			if !strings.Contains(help, "(env PURCHASESYNC_") {
				t.Fatalf("%s -h printed no flags:\n%s", name, help)
			}
			noSecrets(t, name+" -h ("+how+")", help)
			if strings.Contains(help, "-admin.token") && !strings.Contains(help, "PURCHASESYNC_ADMIN_TOKEN_FILE") {
				t.Errorf("%s -h does not name PURCHASESYNC_ADMIN_TOKEN_FILE:\n%s", name, help)
			}
		}
	}
}

// TestSecretFiles: each secret reaches its stage from a _FILE variable.
func TestSecretFiles(t *testing.T) {
	env := secretEnvs(t)["file"]
	fs := newFlagSet("run", func(k string) string { return env[k] })
	f := addRunFlags(fs)
	if err := fs.parse(nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.ingest.config(&common{topics: schemas.Topics{Prefix: "p."}})
	if err != nil || len(cfg.Secrets) != 1 || string(cfg.Secrets[0]) != "hunter2-shopify" {
		t.Errorf("Shopify secret from its file: %q %v", cfg.Secrets, err)
	}
	if *f.control.adminToken != "hunter2-admin" || *f.control.accessTokens != "a.myshopify.com=hunter2-access" || *f.sink.registrarAPIKey != "hunter2-registrar" {
		t.Errorf("admin token, access tokens, registrar key from their files: %q %q %q", *f.control.adminToken, *f.control.accessTokens, *f.sink.registrarAPIKey)
	}
	kc, err := f.kafka.conn.Config()
	if err == nil || kc.SASL.Password != "hunter2-kafka" {
		t.Errorf("Kafka password from its file: %v (want the error: no mechanism)", err)
	}
	// Both the variable and its file: an error naming both.
	env[secretEnv] = "hunter2-shopify"
	fs = newFlagSet("ingest", func(k string) string { return env[k] })
	addIngestFlags(fs)
	err = fs.parse(nil)
	if err == nil || !strings.Contains(err.Error(), secretEnv+" and "+secretEnv+"_FILE") {
		t.Errorf("both set: %v", err)
	}
	noSecrets(t, "error", err.Error())
}

// TestKafkaConfigErrorStops: every subcommand that talks to Kafka stops at
// start with the one-line error of a wrong password, instead of retrying.
func TestKafkaConfigErrorStops(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "app", "right"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	env := map[string]string{
		"PURCHASESYNC_KAFKA_BROKERS":        strings.Join(cluster.ListenAddrs(), ","),
		"PURCHASESYNC_KAFKA_SASL_MECHANISM": "scram-sha-512",
		"PURCHASESYNC_KAFKA_SASL_USERNAME":  "app",
		"PURCHASESYNC_LOG_LEVEL":            "error",
		"PURCHASESYNC_REPLAY_FROM":          "1h",
		"PURCHASESYNC_CLICKHOUSE_ADDR":      "127.0.0.1:1",
		"PURCHASESYNC_INGEST_ADDR":          "127.0.0.1:0",
		"PURCHASESYNC_OPS_ADDR":             "127.0.0.1:0",
	}
	for k, v := range secretVars {
		env[k] = v
	}
	for _, name := range []string{"ingest", "join", "sink", "control", "migrate", "replay", "run"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		var err error
		logs := captureStderr(t, func() {
			err = run(ctx, []string{"purchasesync", name}, func(k string) string { return env[k] }, io.Discard)
		})
		cancel()
		var ce *kafkaconf.ConfigError
		if !errors.As(err, &ce) || ce.Flag != "-kafka.sasl.password" || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want the one-line error naming -kafka.sasl.password", name, err)
		} else if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: took %s to stop", name, took)
		}
		noSecrets(t, name+"'s error", err.Error())
		noSecrets(t, name+"'s logs", logs)
	}
}

// TestKafkaNotReachable: an unreachable cluster is one log line, and the
// process goes on.
func TestKafkaNotReachable(t *testing.T) {
	fs := newFlagSet("test", func(k string) string {
		return map[string]string{"PURCHASESYNC_KAFKA_BROKERS": "127.0.0.1:1", "PURCHASESYNC_KAFKA_SASL_MECHANISM": "plain",
			"PURCHASESYNC_KAFKA_SASL_USERNAME": "u", "PURCHASESYNC_KAFKA_SASL_PASSWORD": "hunter2-kafka"}[k]
	})
	kf, lf := addKafkaFlags(fs), addLogFlags(fs)
	if err := fs.parse(nil); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	c, err := newCommon(kf, lf, &logs)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.checkKafka(context.Background(), false); err != nil {
		t.Fatalf("checkKafka: %v, want nil: the stages retry", err)
	}
	if err := c.checkKafka(context.Background(), true); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("checkKafka for -check: %v, want an error naming the brokers", err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var notReachable int
	for _, l := range lines {
		if strings.Contains(l, "Kafka not reachable yet") {
			notReachable++
		}
	}
	if notReachable != 1 || !strings.Contains(logs.String(), "without TLS") {
		t.Errorf("logs: want one \"Kafka not reachable yet\" and the SASL-without-TLS warning:\n%s", logs.String())
	}
	noSecrets(t, "logs", logs.String())
}

// TestKgoLoggerOneLinePerEpisode: franz-go's per-retry warnings never reach
// warn, and a repeated error does once per errorEvery.
func TestKgoLoggerOneLinePerEpisode(t *testing.T) {
	var buf bytes.Buffer
	g := newKgoLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if g.Level() != kgo.LogLevelError {
		t.Errorf("Level() = %v with debug off, want error only", g.Level())
	}
	for range 50 {
		g.Log(kgo.LogLevelWarn, "unable to open connection to broker", "addr", "127.0.0.1:1")
		g.Log(kgo.LogLevelError, "group manage loop errored", "err", "EOF")
		g.Log(kgo.LogLevelInfo, "immediate metadata update triggered")
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 || !strings.Contains(buf.String(), "group manage loop errored") {
		t.Errorf("50 retries logged %d lines at info and above, want the error once:\n%s", n, buf.String())
	}
	if !g.firstIn("group manage loop errored", time.Now().Add(errorEvery)) {
		t.Error("the error is not logged again after errorEvery")
	}
}
